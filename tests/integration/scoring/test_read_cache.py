"""Cached score reads: a refresh's change is on the next read, computed_at moves without any row
being rewritten, ETag/304, scope still checked on every request, concurrent readers share work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.scoring.adapters.tables import period_state, score
from services.scoring.api.app import create_app
from services.scoring.api.read_cache import STATE_SECONDS, ReadCache
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import mark_dirty
from shared.contracts import RawEvent

from .helpers import apply_batches, load_reference, pin_clock
from .scenario import NOW, READ_AT, dossier_events
from .test_api import as_staff

pytestmark = pytest.mark.integration

OCT = {"period": "2026-10"}
RANKING = ("/api/v1/scores", {**OCT, "level": "province"})


@pytest.fixture
async def api(clean: Scoring) -> FastAPI:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    assert "2026-10" in await refresh_once(clean, now=NOW)
    return pin_clock(create_app(clean), READ_AT)


@pytest.fixture
async def strict(api: FastAPI) -> FastAPI:
    """The API reading its period's state on every request (no reuse window)."""
    cache_of(api).states.seconds = 0
    return api


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://scoring") as c:
        yield c


def cache_of(api: FastAPI) -> ReadCache:
    cache: ReadCache = api.state.read_cache
    return cache


def a3_synced() -> RawEvent:
    """A3 (P01) synced to the national portal: P01's 1.4 and total go up."""
    return RawEvent(
        source="tms",
        event_id="A3-synced-cache-test",
        type="dossier.synced",
        occurred_at="2026-10-08T10:00:00+07:00",
        data={"dossier_id": "A3"},
    )


async def _total(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[float, float, datetime]:
    rows = (await client.get(RANKING[0], params=RANKING[1])).json()["rows"]
    ranking = next(r["total"] for r in rows if r["unit_code"] == "P01")
    r = await client.get("/api/v1/scores/P01", params=OCT, headers=headers)
    assert r.status_code == 200, r.text
    return ranking, r.json()["total"], datetime.fromisoformat(r.json()["computed_at"])


async def test_a_changed_score_is_on_the_next_read_after_the_refresh_commits(
    clean: Scoring, strict: FastAPI, client: httpx.AsyncClient
) -> None:
    api = strict
    p01 = as_staff(clean, "P01")
    assert await _total(client, p01) == (53.21, 53.21, NOW)
    assert await _total(client, p01) == (53.21, 53.21, NOW)  # served from the cache
    assert cache_of(api).bodies.hits >= 2
    # The same judging instant on purpose: the cache keys on the period's version, not on a time.
    await apply_batches(clean, [[a3_synced()]], NOW)
    assert "2026-10" in await refresh_once(clean, now=NOW)
    ranking, breakdown, computed_at = await _total(client, p01)
    assert ranking == breakdown > 53.21 and computed_at == NOW


async def test_within_the_reuse_window_a_change_shows_once_the_window_passes(
    clean: Scoring, api: FastAPI, client: httpx.AsyncClient
) -> None:
    p01 = as_staff(clean, "P01")
    states = cache_of(api).states
    assert states.seconds == STATE_SECONDS <= 0.25  # a small part of the 1 s freshness target
    assert (await _total(client, p01))[:2] == (53.21, 53.21)
    states.seconds = 60.0  # a window no slow machine outlasts: 20 requests, no state read at all
    reads = states.reads
    await asyncio.gather(*(_total(client, p01) for _ in range(10)))
    assert states.reads == reads
    states.seconds = STATE_SECONDS
    await apply_batches(clean, [[a3_synced()]], NOW)
    assert "2026-10" in await refresh_once(clean, now=NOW)
    committed = time.monotonic()
    while (await _total(client, p01))[:2] == (53.21, 53.21):
        assert time.monotonic() - committed < STATE_SECONDS + 5.0, "the change never showed"
        await asyncio.sleep(0.02)
    ranking, breakdown, _ = await _total(client, p01)
    assert ranking == breakdown > 53.21


async def test_a_refresh_that_moves_nothing_moves_computed_at_only(
    clean: Scoring, strict: FastAPI, client: httpx.AsyncClient
) -> None:
    async with clean.sessions() as s:
        before = (await s.execute(select(period_state).where(period_state.c.period == "2026-10"))).mappings().all()
        stamps = set((await s.execute(select(score.c.computed_at).where(score.c.period == "2026-10"))).scalars())
    assert {r["methodology"] for r in before} == set(clean.methodologies)
    assert all(r["computed_at"] == r["changed_at"] == NOW for r in before)
    first = await client.get(RANKING[0], params=RANKING[1])
    later = NOW + timedelta(minutes=5)
    async with clean.uow() as uow:
        await mark_dirty(uow, ["2026-10"])
    assert "2026-10" in await refresh_once(clean, now=later)
    async with clean.sessions() as s:
        after = (await s.execute(select(period_state).where(period_state.c.period == "2026-10"))).mappings().all()
        rows_after = set((await s.execute(select(score.c.computed_at).where(score.c.period == "2026-10"))).scalars())
    by_m = {r["methodology"]: r for r in before}
    for r in after:  # computed, nothing moved: same version and changed_at, later computed_at
        assert r["computed_at"] == later
        assert (r["changed_at"], r["version"]) == (
            by_m[r["methodology"]]["changed_at"],
            by_m[r["methodology"]]["version"],
        )
    assert rows_after == stamps == {NOW}  # no score row rewritten
    second = await client.get(RANKING[0], params=RANKING[1])
    assert datetime.fromisoformat(second.json()["computed_at"]) == later
    assert second.json()["rows"] == first.json()["rows"]
    assert second.headers["etag"] != first.headers["etag"]  # the body (its computed_at) changed


async def test_etag_and_304(clean: Scoring, strict: FastAPI, client: httpx.AsyncClient) -> None:
    first = await client.get(RANKING[0], params=RANKING[1])
    tag = first.headers["etag"]
    assert first.status_code == 200 and tag.startswith('"')
    again = await client.get(RANKING[0], params=RANKING[1], headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    weak = await client.get(RANKING[0], params=RANKING[1], headers={"If-None-Match": f'"x", W/{tag}'})
    assert weak.status_code == 304
    other = await client.get("/api/v1/scores", params={**OCT, "level": "local"}, headers={"If-None-Match": tag})
    assert other.status_code == 200 and other.headers["etag"] != tag  # another query, another body
    # A change: the old tag no longer matches.
    await apply_batches(clean, [[a3_synced()]], NOW)
    await refresh_once(clean, now=NOW)
    changed = await client.get(RANKING[0], params=RANKING[1], headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    p01 = as_staff(clean, "P01")
    b = await client.get("/api/v1/scores/P01", params=OCT, headers=p01)
    b304 = await client.get("/api/v1/scores/P01", params=OCT, headers={**p01, "If-None-Match": b.headers["etag"]})
    assert b304.status_code == 304


async def test_scope_holds_on_cached_breakdowns(clean: Scoring, client: httpx.AsyncClient) -> None:
    leader = as_staff(clean, "CT", role="leader")
    r = await client.get("/api/v1/scores/P01", params=OCT, headers=leader)
    assert r.status_code == 200  # now cached
    tag = r.headers["etag"]
    p02 = as_staff(clean, "P02")
    denied = await client.get("/api/v1/scores/P01", params=OCT, headers={**p02, "If-None-Match": tag})
    assert denied.status_code == 403  # not a 304, not the body
    assert (await client.get("/api/v1/scores/P01", params=OCT)).status_code == 401
    assert (await client.get("/api/v1/scores/P01", params=OCT, headers=as_staff(clean, "P01"))).json()["total"] == 53.21


async def test_concurrent_readers_share_one_build(clean: Scoring, strict: FastAPI, client: httpx.AsyncClient) -> None:
    cache = cache_of(strict)
    bodies = await asyncio.gather(*(client.get(RANKING[0], params=RANKING[1]) for _ in range(20)))
    assert {b.content for b in bodies} == {bodies[0].content} and bodies[0].status_code == 200
    assert cache.bodies.builds == 1
    await apply_batches(clean, [[a3_synced()]], NOW)
    await refresh_once(clean, now=NOW)
    bodies = await asyncio.gather(*(client.get(RANKING[0], params=RANKING[1]) for _ in range(20)))
    assert all(next(r for r in b.json()["rows"] if r["unit_code"] == "P01")["total"] > 53.21 for b in bodies)
    assert cache.bodies.builds == 2


async def test_uncomputed_periods_are_computed_on_demand_not_cached(
    clean: Scoring, api: FastAPI, client: httpx.AsyncClient
) -> None:
    r = await client.get("/api/v1/scores", params={"period": "2026-10-01..2026-10-06"})
    assert r.status_code == 200 and "etag" not in r.headers
    assert datetime.fromisoformat(r.json()["computed_at"]) > NOW
    assert len(cache_of(api).bodies) == 0
