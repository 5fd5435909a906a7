"""In-process copies of rarely changing tables (bản sao trong bộ nhớ), read again when they change.

The read requests need the unit tree, the procedure catalogue, the methodology versions and the
working calendar on every call, and all four change rarely (the worker applies unit and catalogue
events; an administrator uploads a methodology or declares a day). Reading them per request cost
a round trip to a busy PostgreSQL and the objects' construction on the event loop — the catalogue
alone was a fifth of a shortfall list's CPU (session 9). So the first request loads a copy; after
that a request that finds it due starts one reload in the background and answers with the copy
in hand: no request waits for a reload, and no two reloads of a copy run at once.

Due (:class:`Reloads`): while the owner hears the tables' changes (:meth:`Reloads.follow`: their
writers NOTIFY after the commit, ``period_state.REFERENCE_CHANGED``), when one was heard
(:meth:`Reloads.changed`), and otherwise every ``heard_seconds``, since a notification is a hint
that nobody resends; while it hears nothing (start, a lost connection), or after a reload failed,
every ``seconds``. Reloading every second while readers read was 6.6 % of the API's CPU under a
live stream (session 13), for tables that change a few times a year.
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
NEVER = float("-inf")


class Reloads:
    """When a copy is read again, and the one reload of it that may run at a time."""

    def __init__(self, what: str, *, seconds: float = 1.0, heard_seconds: float = 300.0) -> None:
        self.what = what
        self.seconds = seconds
        self.heard_seconds = heard_seconds
        self.loaded_at = NEVER  # monotonic s of the last load started
        self._running = BackgroundTasks()
        self._hearing: Callable[[], bool] = lambda: False
        self._changed = False  # heard since the last load started
        self._failed = False  # the last reload failed

    def follow(self, hearing: Callable[[], bool]) -> None:
        """Trust :meth:`changed` while ``hearing()`` is true (the owner's listener is connected)."""
        self._hearing = hearing

    def changed(self) -> None:
        """The tables changed, or a change may have been missed: the next request starts a reload."""
        self._changed = True

    @property
    def running(self) -> bool:
        return bool(self._running)

    async def first(self, load: Callable[[], Awaitable[None]]) -> None:
        """The first load, awaited by the request that needs it; a failure leaves it to the next."""
        claimed, self.loaded_at, self._changed = self.loaded_at, time.monotonic(), False
        try:
            await load()
        except BaseException:
            self.loaded_at = claimed
            raise

    def start_if_due(self, load: Callable[[], Awaitable[None]]) -> None:
        """Start ``load`` in the background if the copy is due and no reload of it runs."""
        if self._running or not self._due():
            return
        self.loaded_at, self._changed = time.monotonic(), False
        self._running.start(self._reload(load))

    def _due(self) -> bool:
        if self._changed:
            return True
        trusted = self._hearing() and not self._failed
        return time.monotonic() - self.loaded_at >= (self.heard_seconds if trusted else self.seconds)

    async def _reload(self, load: Callable[[], Awaitable[None]]) -> None:
        try:
            await load()
            self._failed = False
        except Exception:
            self._failed = True  # retried after ``seconds``
            log.warning("a copy's reload failed; the copy in hand stays", extra={"copy": self.what}, exc_info=True)


class TableCopy(Generic[T]):
    """One table's copy: ``value``, loaded by ``load``, reloaded as :class:`Reloads` says."""

    def __init__(
        self,
        load: Callable[[AsyncSession], Awaitable[T]],
        *,
        seconds: float = 1.0,
        heard_seconds: float = 300.0,
    ) -> None:
        self._load = load
        self.value: T | None = None
        self.reloads = Reloads(getattr(load, "__name__", "table"), seconds=seconds, heard_seconds=heard_seconds)

    async def get(self, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]) -> T:
        """The copy; loaded with ``session`` the first time, reloaded in the background (with a
        session of its own from ``sessions``) once it is due."""
        if self.value is None:

            async def first() -> None:
                self.value = await self._load(session)

            await self.reloads.first(first)
            assert self.value is not None
            return self.value

        async def reload() -> None:
            async with sessions() as own:
                self.value = await self._load(own)

        self.reloads.start_if_due(reload)
        return self.value
