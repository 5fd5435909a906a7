"""Where a leaked pooled connection was checked out (a pytest plugin, loaded by ``conftest``).

SQLAlchemy reports a connection the garbage collector found still checked out ("non-checked-in
connection … which will be terminated") from whatever test runs when the collector happens to
run, long after the code that leaked it. So each checkout in the test process notes the call
sites that made it (a few frames, cheap), and that report is followed by a warning of where the
connection was taken: the test then running and the project's innermost frames on the way to it.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

import greenlet
from sqlalchemy import event
from sqlalchemy.pool import Pool

FRAMES = 8
MAX_DEPTH = 120
_REPO = str(Path(__file__).resolve().parents[1]) + "/"
_VENV = "/.venv/"
_taken: dict[int, tuple[str, str, list[str]]] = {}  # id(driver connection) → test, thread, call sites
_test = ["(outside any test)"]


def _driver_id(dbapi_connection: Any) -> int:
    # The asyncpg connection inside SQLAlchemy's adapter: its address is what the report prints.
    return id(getattr(dbapi_connection, "_connection", dbapi_connection))


def _call_sites() -> list[str]:
    """The project's innermost frames that led to the checkout. SQLAlchemy's asyncio checkout
    runs in a greenlet whose frames stop at its own entry: the walk goes on in the greenlet that
    started it, from where it switched (the awaiting coroutines)."""
    frames: list[FrameType] = []
    frame: FrameType | None = sys._getframe(2)
    runner = greenlet.getcurrent()
    while len(frames) < MAX_DEPTH:
        if frame is None:
            runner = runner.parent
            if runner is None:
                break
            frame = runner.gr_frame
            continue
        frames.append(frame)
        frame = frame.f_back
    sites = [
        f"{f.f_code.co_filename[len(_REPO) :]}:{f.f_lineno} {f.f_code.co_name}"
        for f in frames
        if f.f_code.co_filename.startswith(_REPO) and _VENV not in f.f_code.co_filename
    ]
    return sites[:FRAMES]


@event.listens_for(Pool, "checkout")
def _checked_out(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    _taken[_driver_id(dbapi_connection)] = (_test[0], threading.current_thread().name, _call_sites())


@event.listens_for(Pool, "checkin")
def _checked_in(dbapi_connection: Any, _record: Any) -> None:
    if dbapi_connection is not None:
        _taken.pop(_driver_id(dbapi_connection), None)


class LeakedConnectionOrigin(UserWarning):
    """Where the connection of the "non-checked-in connection" warning before it was taken (a
    warning, so that pytest's summary shows it beside that one, whichever test passed)."""


class _ReportOrigin(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "non-checked-in connection" not in message:
            return
        origin = next((v for k, v in list(_taken.items()) if f"at {hex(k)}>" in message), None)
        if origin is None:
            warnings.warn("no checkout of that connection was recorded", LeakedConnectionOrigin, stacklevel=1)
            return
        test, thread, sites = origin
        where = "; ".join(sites) or "no frame of the project"
        warnings.warn(f"taken in {test} (thread {thread}) at {where}", LeakedConnectionOrigin, stacklevel=1)


logging.getLogger("sqlalchemy.pool").addHandler(_ReportOrigin(level=logging.ERROR))


def pytest_runtest_setup(item: Any) -> None:
    _test[0] = item.nodeid
