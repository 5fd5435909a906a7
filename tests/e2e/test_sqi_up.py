"""`./sqi up --no-sim`: /readyz answers 200, the console stays readable, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from sqi_cli.scratch import free_port_block

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def wait_for_text(path: Path, text: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8", errors="replace")
        if text in content:
            return content
        time.sleep(0.3)
    return path.read_text(encoding="utf-8", errors="replace")


def test_up_is_ready_then_ctrl_c_stops_every_process(platform: str, tmp_path: Path) -> None:
    port = free_port_block(5) + 100
    log_dir = tmp_path / "logs"
    console = tmp_path / "console.txt"
    with console.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "sqi"), "up", "--no-sim", "--port", str(port)],
            cwd=ROOT,
            # Small pools: the session's platform, loaded by the other e2e tests, holds its own
            # connections on the same PostgreSQL (max_connections 100 on a developer machine).
            env={**os.environ, "SQI_LOG_DIR": str(log_dir), "SQI_LOG_LEVEL": "INFO", "SQI_DB_POOL_SIZE": "2"},
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(0.5)
        assert ready, console.read_text()[-2000:]
        # Traffic that logs at INFO in the processes: it must stay in the files.
        for _ in range(5):
            httpx.get(f"http://127.0.0.1:{port}/api/v1/units", timeout=10)
        shown = wait_for_text(console, "Ctrl-C stops everything", 30)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0
    time.sleep(0.5)
    assert not any(listening(port + i) for i in range(5)), "a process is still listening"
    leftover = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True).stdout.strip()
    assert leftover == ""

    shown = console.read_text(encoding="utf-8")
    assert f"http://127.0.0.1:{port}/dashboard" in shown and f"http://127.0.0.1:{port}/docs" in shown
    assert f"Logs: {log_dir}" in shown
    # No process's JSON log line reaches the console; each process has its own full log file.
    assert not [line for line in shown.splitlines() if line.lstrip().startswith("{")], shown[-2000:]
    names = {p.stem for p in log_dir.glob("*.log")}
    assert {"gateway", "ingest-api", "scoring-api", "feedback-api", "ingest-worker"} <= names, names
    assert any((log_dir / f"{n}.log").stat().st_size > 0 for n in names)
