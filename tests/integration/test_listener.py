"""The one LISTEN loop (shared.listener): it hears notifications, and when its connection is
killed it connects again, reads what it missed, and hears the next ones. Real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import pytest

from shared.listener import Listener
from shared.settings import CommonSettings
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
CHANNEL = "sqi_test_listener"


async def until(check: Callable[[], bool], what: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        await asyncio.sleep(0.02)


async def test_a_listener_hears_reconnects_and_hears_again() -> None:
    dsn = CommonSettings(database_url=scratch_database_url("sqi_test_listener")).asyncpg_dsn
    await recreate_database(dsn)
    heard: list[str] = []
    pids: list[int] = []

    async def connected(conn: asyncpg.Connection) -> None:
        pids.append(conn.get_server_pid())

    listener = Listener(dsn, CHANNEL, heard.append, on_connect=connected, name="test listener")
    listening = asyncio.create_task(listener.run())
    admin = await asyncpg.connect(dsn)
    try:
        await until(lambda: listener.connected, "the listener connects")
        await admin.execute(f"NOTIFY {CHANNEL}, 'one'")
        await until(lambda: heard == ["one"], "the first notification")

        await admin.execute("SELECT pg_terminate_backend($1)", pids[0])
        await until(lambda: len(pids) == 2 and listener.connected, "the listener connects again")
        await admin.execute(f"NOTIFY {CHANNEL}, 'two'")
        await until(lambda: heard == ["one", "two"], "a notification after the reconnection")
    finally:
        await admin.close()
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    assert not listener.connected
