"""What every browser test shares: the Chromium it drives and an app served for it in a thread.

Playwright's sync API runs the test on the main thread, so each app under test gets a uvicorn of
its own in a thread with its own event loop. :func:`served` stops it when the test is done and
waits for it: a server left shutting down in the background finishes its lifespan (the engine's
disposal) while later tests run, and a connection it still held was then cleaned up by the
garbage collector in whatever test ran at the time.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("SQI_CHROMIUM") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
START_S = 15.0
STOP_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields its base URL. On exit the server
    shuts down (its lifespan included) and the thread has ended, or the test fails."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_S)
        assert not thread.is_alive(), f"uvicorn on port {port} did not stop within {STOP_S} s"
