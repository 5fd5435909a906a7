"""A small table's copy in the API process (bản sao trong bộ nhớ), at most a second or so old.

The read requests need the unit tree and the procedure catalogue on every call, and both change
rarely (the worker applies their change events). Reading them per request cost a round trip to
a busy PostgreSQL and the objects' construction on the event loop — the catalogue alone was a
fifth of a shortfall list's CPU (session 9). So the first request loads the copy; after that, a
request that finds it older than ``seconds`` starts one reload in the background and answers
with the copy in hand: no request waits for a reload, and no two reloads run at once.
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
    def __init__(self, load: Callable[[AsyncSession], Awaitable[T]], *, seconds: float = 1.0) -> None:
        self._load = load
        self.seconds = seconds
        self.value: T | None = None
        self.loaded_at = float("-inf")  # monotonic s of the last load started
        self._reloads = BackgroundTasks()  # in flight

    async def get(self, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]) -> T:
        """The copy; loaded with ``session`` the first time, reloaded in the background (with a
        session of its own from ``sessions``) once it is older than ``seconds``."""
        if self.value is None:
            claimed, self.loaded_at = self.loaded_at, time.monotonic()
            try:
                self.value = await self._load(session)
            except BaseException:
                self.loaded_at = claimed  # the next request tries again
                raise
            return self.value
        if time.monotonic() - self.loaded_at >= self.seconds:
            self.loaded_at = time.monotonic()  # one reload at a time; a failed one is retried later
            self._reloads.start(self._reload(sessions))
        return self.value

    async def _reload(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        try:
            async with sessions() as session:
                self.value = await self._load(session)
        except Exception:
            log.warning("a table copy's reload failed; the copy in hand stays", exc_info=True)
