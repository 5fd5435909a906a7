"""`./sqi up --no-sim` brings the gateway's /readyz to 200, and Ctrl-C leaves nothing behind."""

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


def test_up_is_ready_then_ctrl_c_stops_every_process(platform: str) -> None:
    port = free_port_block(5) + 100
    process = subprocess.Popen(
        [str(ROOT / "sqi"), "up", "--no-sim", "--port", str(port)],
        cwd=ROOT,
        env=os.environ.copy(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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
        assert ready, process.stderr.read().decode()[-2000:] if process.poll() is not None else "not ready"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0
    time.sleep(0.5)
    assert not any(listening(port + i) for i in range(5)), "a process is still listening"
    leftover = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True).stdout.strip()
    assert leftover == ""
