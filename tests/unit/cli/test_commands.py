"""Commands fail in one clear line with a distinct code; unknown units are refused (issue 10, item 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from sqi_cli.main import main
from sqi_cli.preflight import EXIT_REFUSED, EXIT_UNREACHABLE

ROOT = Path(__file__).resolve().parents[3]
# 127.0.0.2 is loopback that nothing listens on, yet not an address `./sqi` starts servers for.
NO_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.2:1/sqi"
NO_RABBITMQ = "amqp://guest:guest@127.0.0.2:1/"
NO_GATEWAY = "http://127.0.0.2:1"
SOME_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(autouse=True)
def no_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    # Unit checks fall back to the reference units.csv when no platform answers.
    monkeypatch.setenv("SQI_GATEWAY_URL", NO_GATEWAY)


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_key_create_without_postgres(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SQI_DATABASE_URL", NO_POSTGRES)
    assert main(["key", "create", "--source", "tms-p01", "--units", "P01"]) == EXIT_UNREACHABLE
    line = one_line(capsys.readouterr().err)
    assert "PostgreSQL at 127.0.0.2:1 does not answer" in line and "SQI_DATABASE_URL" in line


def test_key_create_refuses_unknown_units(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["key", "create", "--source", "tms-p01", "--units", "P01,NOPE"]) == EXIT_REFUSED
    line = one_line(capsys.readouterr().err)
    assert "unknown unit(s) NOPE" in line and "units.csv" in line


def test_token_refuses_unknown_units_and_mints_for_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--sub", "a", "--role", "leader", "--unit", "ZZZ"]) == EXIT_REFUSED
    assert "unknown unit(s) ZZZ" in one_line(capsys.readouterr().err)
    assert main(["token", "--sub", "a", "--role", "leader", "--unit", "P01"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, options={"verify_signature": False})["unit"] == "P01"
    assert main(["token", "--sub", "a", "--role", "root", "--unit", "P01"]) == EXIT_REFUSED


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"SQI_DATABASE_URL": NO_POSTGRES}, ("PostgreSQL at 127.0.0.2:1", "SQI_DATABASE_URL")),
        ({"SQI_DATABASE_URL": SOME_POSTGRES, "SQI_AMQP_URL": NO_RABBITMQ}, ("RabbitMQ at 127.0.0.2:1", "SQI_AMQP_URL")),
        ({"SQI_DATABASE_URL": SOME_POSTGRES}, ("gateway at http://127.0.0.2:1", "SQI_GATEWAY_URL")),
    ],
)
def test_recompute_checks_what_it_needs_before_the_replay(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], names: tuple[str, ...]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["recompute"]) == EXIT_UNREACHABLE
    line = one_line(capsys.readouterr().err)
    assert all(n in line for n in names), line


def test_migrate_without_postgres(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SQI_DATABASE_URL", NO_POSTGRES)
    assert main(["migrate"]) == EXIT_UNREACHABLE
    assert "PostgreSQL at 127.0.0.2:1 does not answer" in one_line(capsys.readouterr().err)


def test_the_real_command_prints_one_line_and_exit_code_3() -> None:
    env = {**os.environ, "SQI_DATABASE_URL": NO_POSTGRES, "SQI_GATEWAY_URL": NO_GATEWAY}
    done = subprocess.run(
        [sys.executable, "-m", "sqi_cli", "recompute"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == EXIT_UNREACHABLE
    assert one_line(done.stderr).startswith("sqi: PostgreSQL at 127.0.0.2:1 does not answer")


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "3 PostgreSQL, RabbitMQ or the gateway unreachable" in out and "1 differences found" in out


def test_simulate_without_a_platform(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--days", "1", "--gateway", NO_GATEWAY]) == EXIT_UNREACHABLE
    line = one_line(capsys.readouterr().err)
    assert "gateway at http://127.0.0.2:1 does not answer" in line and "./sqi up" in line
