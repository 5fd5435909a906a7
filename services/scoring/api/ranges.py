"""Custom ranges (khoảng ngày tùy chọn) judged on demand, bounded per process.

A custom range has no stored counts: answering it judges every dossier of the range, national
(``evaluate_live``). Its ranking and breakdown are counted chunk by chunk in bounded memory
(``range_counts``: the counters and one chunk of 2,000 dossiers, whatever the range's length);
its shortfall list and points at stake (staff only) hold the verdicts of the asked unit's subtree
only (the root's: every verdict of the range). The CPU is not bounded by the range: reading and
judging cost ≈ 0.4 ms of wall a dossier, so a national month (≈ 226,000 dossiers) is ≈ 1.5 min
of a core and a year ≈ 15–20 min. Unbounded, a few concurrent requests for long ranges took the
API's CPU. So, per process:

- one evaluation per key at a time: concurrent identical requests wait for the same one
  (single flight), and it runs to its end even if the request that started it goes away;
- its result is kept ``ttl_seconds`` (60 s): a range's figures change only with late events, and
  the answer's ``computed_at`` says when they were computed;
- at most ``max_running`` distinct evaluations at once; beyond that a new one is refused at once
  with 503 and ``Retry-After`` (queueing would hold the connections and the memory of every
  waiting request), never a slow answer;
- a request waits at most ``wait_seconds`` (20 s) for its evaluation, then gets 503 with
  ``Retry-After`` saying it is still being computed: the gateway gives up on a service after 30 s
  (a bare 504, and the next request would not know the answer is coming). The evaluation goes on;
  asking again after it ends gets its kept result.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from fastapi import HTTPException

from shared.background import BackgroundTasks

TTL_SECONDS = 60.0
# Evaluations at once: each takes a core while it judges (a worker thread a chunk at a time); a
# ranking's takes a few MB whatever the range (range_counts), a staff shortfall list or stake the
# verdicts of its unit's subtree (the root's: every verdict of the range, ≈ 1–2 KB each).
MAX_RUNNING = 2
MAX_ENTRIES = 16  # results kept (a national ranking is ≈ 2 MB of rows); the oldest goes first
RETRY_AFTER_SECONDS = 10
# Below the gateway's upstream timeout (30 s, gateway.settings.upstream_timeout_s), with room for
# the request's own reads.
WAIT_SECONDS = 20.0

BUSY_MESSAGE = (
    "Hệ thống đang tính quá nhiều khoảng ngày tùy chọn, vui lòng thử lại sau ít giây "
    "(hoặc chọn kỳ tháng, quý, năm: luôn có sẵn). / Too many custom ranges are being computed; "
    "try again in a few seconds (or ask for a month, quarter or year: always available)."
)

STILL_COMPUTING_MESSAGE = (
    "Khoảng ngày này đang được tính, vui lòng thử lại sau ít giây: kết quả được giữ khi tính xong. / "
    "This range is still being computed; try again in a few seconds: the result is kept once done."
)


class RangeEvaluations:
    """Single flight, a short-lived result cache and a bound on concurrent evaluations."""

    def __init__(
        self,
        *,
        ttl_seconds: float = TTL_SECONDS,
        max_running: int = MAX_RUNNING,
        max_entries: int = MAX_ENTRIES,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.wait_seconds = wait_seconds
        self.max_running = max_running
        self.max_entries = max_entries
        self.evaluations = 0  # started, for tests and metrics
        self.joins = 0  # requests that waited for an evaluation another request started
        self._done: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._running: dict[Hashable, asyncio.Future[Any]] = {}
        self._tasks = BackgroundTasks()

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        """``compute()``'s result for ``key``: kept, in flight, or started now (503 when full, or
        when not done within ``wait_seconds``)."""
        kept = self._kept(key)
        if kept is not None:
            return kept[1]
        flight = self._running.get(key)
        if flight is None:
            flight = self._start(key, compute)
        else:
            self.joins += 1
        # Shielded: a request that goes away, or stops waiting, does not cancel what the others
        # wait for.
        try:
            return await asyncio.wait_for(asyncio.shield(flight), self.wait_seconds)
        except TimeoutError:
            raise HTTPException(
                503, detail=STILL_COMPUTING_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from None

    def _kept(self, key: Hashable) -> tuple[float, Any] | None:
        kept = self._done.get(key)
        if kept is None:
            return None
        if time.monotonic() - kept[0] >= self.ttl_seconds:
            del self._done[key]
            return None
        return kept

    def _start(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        if len(self._running) >= self.max_running:
            raise HTTPException(503, detail=BUSY_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        flight: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._running[key] = flight
        self.evaluations += 1
        self._tasks.start(self._run(key, flight, compute))
        return flight

    async def _run(self, key: Hashable, flight: asyncio.Future[Any], compute: Callable[[], Awaitable[Any]]) -> None:
        try:
            value = await compute()
        except asyncio.CancelledError:  # the process is stopping: the waiters stop too
            flight.cancel()
            raise
        except Exception as exc:  # every waiter sees it; nothing is kept, the next request tries again
            flight.set_exception(exc)
            flight.exception()  # retrieved: no "never retrieved" warning when every waiter left
            return
        finally:
            del self._running[key]
        self._done[key] = (time.monotonic(), value)
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)
        flight.set_result(value)
