"""The API's read cache without a database: coalesced state reads never serve a state older than
the request, bodies are bounded and replaced by version, ETags compare as RFC 9110 says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.adapters.period_state import PeriodState
from services.scoring.api.read_cache import BodyCache, CachedBody, StateReader, _matches, cut

T0 = datetime(2026, 10, 31, tzinfo=UTC)


class FakeEngine:
    """Each read returns the current ``version`` as it is when the read *starts*, then waits for
    ``release`` (so a test can hold a read in flight)."""

    def __init__(self) -> None:
        self.version = 1
        self.reads = 0
        self.release = asyncio.Event()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Any]:
        engine = self

        class Conn:
            async def execution_options(self, **_: Any) -> Conn:
                return self

            async def execute(self, _stmt: Any) -> Any:
                engine.reads += 1
                seen = engine.version
                await engine.release.wait()
                row = SimpleNamespace(computed_at=T0, changed_at=T0, version=seen)
                return SimpleNamespace(first=lambda: row)

        yield Conn()


async def test_state_reads_are_shared_but_never_older_than_the_request() -> None:
    engine = FakeEngine()
    reader = StateReader(cast(AsyncEngine, engine))
    early = [asyncio.create_task(reader.get("2026-10", "tax-2025")) for _ in range(10)]
    await asyncio.sleep(0)  # the first read starts (seeing version 1) and is held
    await asyncio.sleep(0)
    engine.version = 2  # a refresh commits while that read is in flight
    late = [asyncio.create_task(reader.get("2026-10", "tax-2025")) for _ in range(10)]
    await asyncio.sleep(0)
    engine.release.set()
    got_early = await asyncio.gather(*early)
    got_late = await asyncio.gather(*late)
    assert {s.version for s in got_early if s} == {1}
    assert {s.version for s in got_late if s} == {2}  # joined the next read, not the running one
    assert engine.reads == 2  # 20 requests, two queries
    # Within the reuse window the latest read is the answer; with no window, every request reads.
    engine.version = 3
    assert await reader.get("2026-10", "tax-2025") == got_late[0] and engine.reads == 2
    reader.seconds = 0
    latest = await reader.get("2026-10", "tax-2025")
    assert latest is not None and latest.version == 3 and engine.reads == 3


async def test_a_recent_state_is_served_while_the_next_read_runs() -> None:
    engine = FakeEngine()
    engine.release.set()
    reader = StateReader(cast(AsyncEngine, engine), seconds=0.05, stale_seconds=60)
    first = await reader.get("2026-10", "tax-2025")
    assert first is not None and first.version == 1 and engine.reads == 1
    engine.release.clear()  # the next read will be held in a busy database
    engine.version = 2
    await asyncio.sleep(0.06)  # past the window, well within the stale bound
    served = await asyncio.wait_for(reader.get("2026-10", "tax-2025"), 1)  # not held by the read
    assert served == first and engine.reads == 2  # … which has started, once
    assert await reader.get("2026-10", "tax-2025") == first and engine.reads == 2
    engine.release.set()
    deadline = asyncio.get_running_loop().time() + 5
    while (s := await reader.get("2026-10", "tax-2025")) is None or s.version != 2:
        assert asyncio.get_running_loop().time() < deadline, "the background read never landed"
        await asyncio.sleep(0.01)


def test_cut_splices_computed_at() -> None:
    entry = cut({"period": "2026-10", "computed_at": None, "rows": [{"unit_name": "Chi cục"}]}, PeriodState(T0, T0, 7))
    body = entry.head + b'"2026-10-31T00:00:00+00:00"' + entry.tail
    assert (
        body
        == '{"period":"2026-10","computed_at":"2026-10-31T00:00:00+00:00","rows":[{"unit_name":"Chi cục"}]}'.encode()
    )


async def test_bodies_bounded_and_replaced_by_version() -> None:
    cache = BodyCache(max_entries=2)
    state = PeriodState(T0, T0, 1)

    def build(v: int) -> Any:
        async def run() -> tuple[PeriodState, dict[str, Any]]:
            return PeriodState(T0, T0, v), {"v": v, "computed_at": None}

        return run

    for key in ("a", "b", "c"):
        await cache.lookup(key, state, build(1))
    assert len(cache) == 2 and cache.builds == 3
    await cache.lookup("c", state, build(1))
    assert cache.hits == 1
    _, entry = await cache.lookup("c", PeriodState(T0, T0, 2), build(2)) or (None, None)
    assert entry is not None and entry.version == 2 and b'"v":2' in entry.head and cache.builds == 4


T1 = datetime(2026, 10, 31, 0, 5, tzinfo=UTC)


class HeldBuild:
    """A build of ``version`` that waits for ``release`` (or fails with ``error``)."""

    def __init__(self, version: int, error: Exception | None = None) -> None:
        self.version, self.error = version, error
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self) -> tuple[PeriodState, dict[str, Any]]:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return PeriodState(T1, T1, self.version), {"v": self.version, "computed_at": None}


async def _settled(cache: BodyCache, key: str, state: PeriodState, build: Any, want: int) -> CachedBody:
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        found = await cache.lookup(key, state, build, stale_seconds=60)
        if found is not None and found[1].version == want:
            return found[1]
        assert asyncio.get_running_loop().time() < deadline, "the rebuild never landed"
        await asyncio.sleep(0.01)


async def test_a_body_found_current_lately_answers_as_of_its_own_state_while_its_successor_builds() -> None:
    cache = await cache_holding_v1()
    rebuild = HeldBuild(2)

    answers = [await asyncio.wait_for(cache.lookup("k", V2, rebuild, stale_seconds=60), 1) for _ in range(3)]

    for found in answers:
        assert found is not None
        state, entry = found
        assert entry.version == 1 and state == V1  # the old figures, with the instant they were exact at
    await asyncio.sleep(0)
    assert rebuild.calls == 1 and cache.stale_hits == 3  # one build for all of them
    rebuild.release.set()
    entry = await _settled(cache, "k", V2, rebuild, 2)
    assert b'"v":2' in entry.head and rebuild.calls == 1


async def test_requests_in_one_loop_turn_start_one_rebuild() -> None:
    cache = await cache_holding_v1()
    rebuild = HeldBuild(2)
    stale, waiting = 3, 2  # answered with V1 at once, and two that may not wait on it (window 0)
    asking = [cache.lookup("k", V2, rebuild, stale_seconds=60) for _ in range(stale)]
    asking += [cache.lookup("k", V2, rebuild, stale_seconds=0) for _ in range(waiting)]
    gathered = asyncio.gather(*asking)
    await asyncio.sleep(0.05)
    rebuild.release.set()
    answers = await asyncio.wait_for(gathered, 5)
    assert [found[1].version for found in answers if found] == [1] * stale + [2] * waiting
    assert rebuild.calls == 1


async def test_a_body_not_found_current_within_the_window_is_rebuilt_while_the_request_waits() -> None:
    cache = await cache_holding_v1()
    rebuild = HeldBuild(2)
    asking = asyncio.ensure_future(cache.lookup("k", V2, rebuild, stale_seconds=0))
    await asyncio.sleep(0.05)
    assert not asking.done()  # no window: it waits for the new body
    rebuild.release.set()
    found = await asking
    assert found is not None and found[1].version == 2 and cache.stale_hits == 0


async def test_a_failed_rebuild_leaves_the_previous_body_and_the_next_waiting_request_gets_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = await cache_holding_v1()
    failing = HeldBuild(2, error=RuntimeError("database gone"))
    found = await cache.lookup("k", V2, failing, stale_seconds=60)
    assert found is not None and found[1].version == 1
    failing.release.set()
    deadline = asyncio.get_running_loop().time() + 5
    while "could not be built" not in caplog.text:
        assert asyncio.get_running_loop().time() < deadline, "the failure was never logged"
        await asyncio.sleep(0.01)
    again = await cache.lookup("k", V2, failing, stale_seconds=60)  # still inside the window
    assert again is not None and again[1].version == 1
    with pytest.raises(RuntimeError, match="database gone"):
        await cache.lookup("k", V2, failing, stale_seconds=0)


V1 = PeriodState(T0, T0, 1)
V2 = PeriodState(T1, T1, 2)


async def cache_holding_v1() -> BodyCache:
    """A cache whose key ``k`` holds the body of version 1, just found current."""
    cache = BodyCache()
    await cache.lookup("k", V1, build_of(V1))
    return cache


def build_of(state: PeriodState) -> Any:
    async def run() -> tuple[PeriodState, dict[str, Any]]:
        return state, {"v": state.version, "computed_at": None}

    return run


def test_if_none_match() -> None:
    assert _matches('"abc"', '"abc"') and _matches('W/"abc"', '"abc"') and _matches('"x", "abc"', '"abc"')
    assert _matches("*", '"abc"') and not _matches('"abd"', '"abc"') and not _matches(None, '"abc"')
