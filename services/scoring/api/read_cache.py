"""Score reads that do no work (đọc điểm không phải tính lại): bodies serialised once per version.

A ranking or breakdown of a stored period changes only when a refresh moves one of its score rows,
which bumps the period's ``version`` (``scoring.period_state``). So the API keeps each answer as
bytes under its request key (path, normalised query) together with the version it was built
from; a request costs one primary-key read of period_state plus a dict lookup, and the body is
rebuilt only when the version moved. ``computed_at`` (the instant the figures are exact as of)
moves on every refresh, rows moved or not: it is spliced into the cached bytes per request.

Freshness: a period's state read is reused for ``STATE_SECONDS`` (0.2 s), so a refresh is
visible about that long after it commits (the refresh cycle itself is 0.25 s; the freshness
target is 1 s). Per-request state reads were measured to be most of a cached read's CPU (≈ 4 ms
of ≈ 7 ms with the database instrumentation) and, coalesced, still ran back to back under 20
readers. When the window has passed, concurrent requests share one read, but only a read that
*started after they arrived* (:class:`StateReader`), so sharing never serves a state older than
the window allows — except that a state younger than ``STALE_SECONDS`` (1 s) is served at once
while the next read runs in the background (stale-while-revalidate): under a live stream a
state read waits its turn in a busy PostgreSQL, and the request that waited for it was the slow
one of every window (session 9: the scoring API's own p99 ≈ 75–100 ms while its p50 was < 5 ms).
A refresh is then visible to a reader at most ``STALE_SECONDS`` after it commits, usually
``STATE_SECONDS`` plus one read — and sooner: the API listens for each committed computation
(``period_state.CHANNEL``, :meth:`StateReader.heard`) and reads the states it serves again at
once, in the background, so a refresh shows one state read after its notification. The windows
stay as the fallback while the listener is not connected (start, a lost connection).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.adapters.period_state import PeriodState, read_state
from shared.background import BackgroundTasks
from shared.metrics import READ_CACHE_ANSWERS

log = logging.getLogger(__name__)

# Stands for computed_at in a cached body; random so that no unit name can contain it.
_MARK = f"computed-at-{uuid.uuid4().hex}"
_QUOTED_MARK = orjson.dumps(_MARK)

StateKey = tuple[str, str]  # (period label, methodology id)
STATE_SECONDS = 0.2  # how long a period's state read is reused (0: every request reads it)
STALE_SECONDS = 1.0  # up to this age it is served while the next read runs in the background


class StateReader:
    """Reads of period_state, coalesced per (period, methodology) without serving stale states.

    A request joins the *next* read of its key: the one that has not started yet. While a read
    runs, arrivals queue for the one after it, which starts when the running one ends. Every
    joiner arrived before its read started, so what it gets is at least as new as its arrival —
    and 20 concurrent readers of one period cost about one query per query-time, not 20. A state
    past its window but younger than ``stale_seconds`` is answered at once, and the next read
    starts for those who come after (with ``seconds = 0`` every request reads, as tests need).
    """

    def __init__(
        self, engine: AsyncEngine, seconds: float = STATE_SECONDS, stale_seconds: float = STALE_SECONDS
    ) -> None:
        self._engine = engine
        self.seconds = seconds
        self.stale_seconds = stale_seconds  # no wait for a read up to this age (not with seconds = 0)
        self.reads = 0
        self._next: dict[StateKey, asyncio.Future[PeriodState | None]] = {}
        self._running: dict[StateKey, asyncio.Future[PeriodState | None]] = {}
        self._tasks = BackgroundTasks()
        # The latest read of each key and when it started (monotonic s); bounded by the periods read.
        self._latest: dict[StateKey, tuple[float, PeriodState | None]] = {}

    async def get(self, period: str, methodology: str) -> PeriodState | None:
        key = (period, methodology)
        latest = self._latest.get(key)
        if latest is not None:
            age = time.monotonic() - latest[0]
            if age < self.seconds:
                return latest[1]
            if self.seconds > 0 and age < self.stale_seconds:
                if key not in self._next and key not in self._running:
                    self._next_read(key)  # for the requests after this one; nobody waits for it
                return latest[1]
        return await asyncio.shield(self._next.get(key) or self._next_read(key))

    def heard(self, payload: str) -> None:
        """A computation of ``"period|methodology"`` committed (``period_state.CHANNEL``): a state
        this process serves is read again now, in the background, instead of when its window ends."""
        period, _, methodology = payload.partition("|")
        key = (period, methodology)
        if key in self._latest and key not in self._next:
            self._next_read(key)

    def _next_read(self, key: StateKey) -> asyncio.Future[PeriodState | None]:
        slot: asyncio.Future[PeriodState | None] = asyncio.get_running_loop().create_future()
        self._next[key] = slot
        self._tasks.start(self._run(key, slot))
        return slot

    async def _run(self, key: StateKey, slot: asyncio.Future[PeriodState | None]) -> None:
        running = self._running.get(key)
        if running is not None:
            await asyncio.wait([running])
        # From here on the slot is closed to newcomers: they start the next one.
        del self._next[key]
        self._running[key] = slot
        try:
            started = time.monotonic()
            self.reads += 1
            async with self._engine.connect() as conn:
                # Autocommit: one statement, no BEGIN / ROLLBACK round trips around it.
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                state = await read_state(auto, *key)
            if len(self._latest) > 1024:  # periods × methodologies ever read: keep it bounded
                self._latest.clear()
            self._latest[key] = (started, state)
            slot.set_result(state)
        except asyncio.CancelledError:
            slot.cancel()
            raise
        except Exception as exc:  # the joiners get the error; nobody waits forever
            slot.set_exception(exc)
            slot.exception()  # retrieved: no "never retrieved" warning when nobody waits any more
        finally:
            if self._running.get(key) is slot:
                del self._running[key]


@dataclass(slots=True)
class CachedBody:
    """A serialised answer built from the period's ``state``, cut where computed_at goes."""

    state: PeriodState  # what it was built from (read in the same snapshot as its rows)
    head: bytes
    tail: bytes
    etags: dict[datetime, str] = field(default_factory=dict)  # per computed_at (a few at most)
    confirmed_at: float = field(default_factory=time.monotonic)  # last found current (monotonic s)

    @property
    def version(self) -> int:
        return self.state.version


def cut(body: dict[str, Any], state: PeriodState) -> CachedBody:
    """Serialise ``body`` (whose ``computed_at`` is left out of it) once."""
    data = orjson.dumps({**body, "computed_at": _MARK})
    head, tail = data.split(_QUOTED_MARK)
    return CachedBody(state, head, tail)


Build = Callable[[], Awaitable[tuple[PeriodState, dict[str, Any]] | None]]
Found = tuple[PeriodState, CachedBody]


class BodyCache:
    """Bounded LRU of answers by request key; one entry per key, replaced when the version moves.

    A body whose period moved on is rebuilt once: concurrent requests share the build. While it
    is rebuilt, a request is answered at once with the body it replaces, as of that body's own
    state, if that body was found current less than ``stale_seconds`` ago: what the reader gets
    was exact that recently, and says so (its ``computed_at``). Under a stream the month's version
    moves every few seconds, and one to three requests of each reader kind waited for each
    rebuild, a read of the period's rows on a busy PostgreSQL (docs/performance.md, session 14).
    A body not confirmed for longer (a key nobody read lately) is rebuilt while the request waits,
    so a reader never gets figures that were outdated for longer than the window;
    ``stale_seconds = 0``: every request waits (tests).
    """

    def __init__(self, max_entries: int = 2048) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, CachedBody] = OrderedDict()
        # Builds in flight, by (key, version): whoever needs one awaits the same task.
        self._building: dict[tuple[Hashable, int], asyncio.Task[Found | None]] = {}
        self.hits = 0
        self.stale_hits = 0  # answered with the previous body while the new one was built
        self.builds = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _store(self, key: Hashable, entry: CachedBody) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def lookup(
        self, key: Hashable, state: PeriodState, build: Build, *, stale_seconds: float = 0.0
    ) -> Found | None:
        """The answer for ``key`` as of ``state`` (or newer, when a refresh committed meanwhile),
        or — while that one is built — the previous answer, as of its own state, when it was found
        current less than ``stale_seconds`` ago; None when ``build`` found nothing to answer with."""
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and entry.version == state.version:
            self._entries.move_to_end(key)
            entry.confirmed_at = now
            self.hits += 1
            READ_CACHE_ANSWERS.labels("scores", "current").inc()
            return state, entry
        if entry is not None and entry.version < state.version and now - entry.confirmed_at < stale_seconds:
            self._flight(key, state, build)  # for the requests after this one
            self.stale_hits += 1
            READ_CACHE_ANSWERS.labels("scores", "previous").inc()
            return entry.state, entry
        READ_CACHE_ANSWERS.labels("scores", "waited").inc()
        return await asyncio.shield(self._flight(key, state, build))

    def _flight(self, key: Hashable, state: PeriodState, build: Build) -> asyncio.Task[Found | None]:
        """The build of ``key`` at ``state.version``: started now unless it is running already
        (registered before this returns, so two requests in one loop turn never start two)."""
        flight = (key, state.version)
        task = self._building.get(flight)
        if task is None:
            task = asyncio.create_task(self._build(key, build))
            self._building[flight] = task  # the reference that keeps it alive until it lands
            task.add_done_callback(lambda t: self._landed(flight, t))
        return task

    def _landed(self, flight: tuple[Hashable, int], task: asyncio.Task[Found | None]) -> None:
        if self._building.get(flight) is task:
            del self._building[flight]
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Retrieved here: a build nobody awaits (its request was answered with the previous
            # body) would otherwise fail silently; the requests awaiting it get the error too.
            log.warning("a score body could not be built", extra={"key": repr(flight[0]), "error": repr(exc)})

    async def _build(self, key: Hashable, build: Build) -> Found | None:
        built = await build()
        self.builds += 1
        if built is None:
            return None
        fresh, body = built  # read in one snapshot: fresh.version is the body's version
        entry = cut(body, fresh)
        current = self._entries.get(key)
        if current is None or current.version <= fresh.version:  # never replace by older
            self._store(key, entry)
        return fresh, entry


def etag_of(key: Hashable, state: PeriodState, entry: CachedBody) -> str:
    """A strong validator of the whole body: its key, its version and its computed_at (a new
    computation that moved nothing still changes ``computed_at``, hence the representation)."""
    tag = entry.etags.get(state.computed_at)
    if tag is None:
        digest = hashlib.blake2b(repr((key, entry.version, state.computed_at)).encode(), digest_size=12)
        tag = f'"{digest.hexdigest()}"'
        if len(entry.etags) >= 4:
            entry.etags.clear()
        entry.etags[state.computed_at] = tag
    return tag


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    return any(t.strip().removeprefix("W/") == tag for t in if_none_match.split(","))


def respond(request: Request, key: Hashable, state: PeriodState, entry: CachedBody) -> Response:
    """The cached answer with its computed_at, or 304 when the client holds this very body."""
    tag = etag_of(key, state, entry)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}  # no-cache: revalidate every time, cheaply
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    stamp = orjson.dumps(state.computed_at.isoformat())
    return Response(entry.head + stamp + entry.tail, media_type="application/json", headers=headers)


@dataclass
class ReadCache:
    """The API process's read cache: coalesced period_state reads and cached bodies."""

    states: StateReader
    bodies: BodyCache = field(default_factory=BodyCache)

    async def answer(self, key: Hashable, state: PeriodState, build: Build) -> Found | None:
        """:meth:`BodyCache.lookup` within this process's staleness window: the states' (a body
        found current less than ``STALE_SECONDS`` ago answers while its successor is built), none
        when every request reads its state (``states.seconds = 0``, as tests that read right after
        a refresh set it)."""
        window = self.states.stale_seconds if self.states.seconds > 0 else 0.0
        return await self.bodies.lookup(key, state, build, stale_seconds=window)
