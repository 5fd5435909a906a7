"""A small table's copy in the API process (bản sao trong bộ nhớ), reloaded when the table changes.

The read requests need the unit tree and the procedure catalogue on every call, and both change
rarely (the worker applies their change events). Reading them per request cost a round trip to
a busy PostgreSQL and the objects' construction on the event loop — the catalogue alone was a
fifth of a shortfall list's CPU (session 9). So the first request loads the copy; after that a
request that finds it due starts one reload in the background and answers with the copy in
hand: no request waits for a reload, and no two reloads run at once.

Due: while the owner hears the table's changes (:meth:`follow`: the worker NOTIFYs after the
commit that changed it), when one was heard (:meth:`changed`), and otherwise every
``heard_seconds``, since a notification is a hint that nobody resends; while it hears nothing
(start, a lost connection), or after a reload failed, every ``seconds``. Reloading every second
while readers read was 6.6 % of the API's CPU under a live stream (session 13) for tables that
change a few times a year.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.background import BackgroundTasks

log = logging.getLogger(__name__)
T = TypeVar("T")


class TableCopy(Generic[T]):
    def __init__(
        self,
        load: Callable[[AsyncSession], Awaitable[T]],
        *,
        seconds: float = 1.0,
        heard_seconds: float = 300.0,
    ) -> None:
        self._load = load
        self.seconds = seconds
        self.heard_seconds = heard_seconds
        self.value: T | None = None
        self.loaded_at = float("-inf")  # monotonic s of the last load started
        self._reloads = BackgroundTasks()  # in flight (one at most)
        self._hearing: Callable[[], bool] = lambda: False
        self._changed = False  # heard since the last load started
        self._failed = False  # the last reload failed

    def follow(self, hearing: Callable[[], bool]) -> None:
        """Trust :meth:`changed` while ``hearing()`` is true (the owner's listener is connected)."""
        self._hearing = hearing

    def changed(self) -> None:
        """The table changed, or a change may have been missed: the next request starts a reload."""
        self._changed = True

    async def get(self, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]) -> T:
        """The copy; loaded with ``session`` the first time, reloaded in the background (with a
        session of its own from ``sessions``) once it is due."""
        if self.value is None:
            claimed, self.loaded_at, self._changed = self.loaded_at, time.monotonic(), False
            try:
                self.value = await self._load(session)
            except BaseException:
                self.loaded_at = claimed  # the next request tries again
                raise
            return self.value
        if not self._reloads and self._due():
            self.loaded_at, self._changed = time.monotonic(), False
            self._reloads.start(self._reload(sessions))
        return self.value

    def _due(self) -> bool:
        if self._changed:
            return True
        trusted = self._hearing() and not self._failed
        return time.monotonic() - self.loaded_at >= (self.heard_seconds if trusted else self.seconds)

    async def _reload(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        try:
            async with sessions() as session:
                self.value = await self._load(session)
            self._failed = False
        except Exception:
            self._failed = True  # retried after ``seconds``
            log.warning("a table copy's reload failed; the copy in hand stays", exc_info=True)
