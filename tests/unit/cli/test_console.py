"""`./sqi up`'s console keeps JSON logs in files and shows warnings, errors and one status line."""

from __future__ import annotations

import io
import json
from pathlib import Path

from sqi_cli.console import Console, LogFollower


def record(level: str, message: str) -> str:
    return json.dumps({"time": "t", "level": level, "name": "x", "message": message}) + "\n"


def test_only_warnings_errors_and_crashes_reach_the_console(tmp_path: Path) -> None:
    out = io.StringIO()
    follower = LogFollower(tmp_path, Console(out, tty=False))
    (tmp_path / "gateway.log").write_text(record("INFO", "request") * 50 + record("WARNING", "slow upstream"))
    (tmp_path / "scoring-worker.log").write_text(record("ERROR", "refresh failed") + "Traceback (most recent call")
    follower.poll()
    with (tmp_path / "scoring-worker.log").open("a") as f:
        f.write(" last):\n")
    follower.poll()
    lines = out.getvalue().splitlines()
    assert lines == [
        "gateway: WARNING slow upstream",
        "scoring-worker: ERROR refresh failed",
        "scoring-worker: Traceback (most recent call last):",
    ]
    assert follower.shown == 3


def test_the_simulator_progress_becomes_the_status_line(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(out, tty=True)
    follower = LogFollower(tmp_path, console)
    (tmp_path / "simulator.log").write_text("simulate: 3 months\n1,000 events  500/s  10.0%  ETA 0:18\r2,000 events")
    follower.poll()
    assert follower.simulator_status == "1,000 events  500/s  10.0%  ETA 0:18"
    console.status(f"sqi: up · simulator: {follower.simulator_status}")
    console.status("sqi: up · simulator: later")
    console.note("feedback-api: ERROR boom")
    written = out.getvalue()
    assert "\n" not in written.split("feedback-api")[0]  # status lines were rewritten in place
    assert "feedback-api: ERROR boom\n" in written and written.endswith("simulator: later".ljust(10))


def test_without_a_terminal_the_status_is_a_plain_line_now_and_then() -> None:
    out = io.StringIO()
    console = Console(out, tty=False, plain_every_s=3600)
    for n in range(100):
        console.status(f"sqi: up {n}")
    assert out.getvalue() == "sqi: up 0\n"


def test_the_follower_thread_starts_and_stops(tmp_path: Path) -> None:
    out = io.StringIO()
    follower = LogFollower(tmp_path, Console(out, tty=False), poll_s=0.05)
    follower.start()
    (tmp_path / "ingest-api.log").write_text(record("ERROR", "late"))
    follower.stop()  # reads what is left before returning
    assert not follower.is_alive()
    assert out.getvalue() == "ingest-api: ERROR late\n"
