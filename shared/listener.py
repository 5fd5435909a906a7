"""One LISTEN connection kept open (kênh thông báo của PostgreSQL): a process hears what other
processes' commits changed (``shared.wakeup`` sends it after their commit) without polling.

``run()`` listens until its task is cancelled, and reconnects with a back-off when the connection
is lost. On each connection ``on_connect`` runs first: it reads what was missed while nobody
listened. Every ``check_s`` seconds ``on_check`` asks the connection something: a half-open
connection says nothing, and a notification lost after its commit (a wake is a hint, never
retried) is made up for. While ``connected`` is false the owner must not trust what it heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)

OnConnection = Callable[[asyncpg.Connection], Awaitable[None]]


async def _nothing(_: asyncpg.Connection) -> None:
    return None


class Listener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[str], None],
        *,
        on_connect: OnConnection = _nothing,
        on_check: OnConnection = _nothing,
        check_s: float = 15.0,
        name: str = "listener",
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._on_check = on_check
        self._check_s = check_s
        self._name = name
        self.connected = False

    async def run(self) -> None:
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(self._channel, lambda _c, _pid, _ch, payload: self._on_notify(payload))
                await self._on_connect(conn)  # what was missed while nobody listened
                self.connected = True
                backoff = 0.5
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self._check_s)
                    if not lost.is_set():
                        await asyncio.wait_for(self._on_check(conn), timeout=5)
            except asyncio.CancelledError:
                self.connected = False
                if conn is not None:
                    conn.terminate()
                raise
            except Exception as exc:  # whatever broke, listen again; the owner reads meanwhile
                log.warning("%s lost", self._name, extra={"channel": self._channel, "error": repr(exc)})
            self.connected = False
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
