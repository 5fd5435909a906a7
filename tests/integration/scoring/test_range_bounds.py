"""Custom ranges judged on demand: single flight, kept 60 s, bounded per process, short when public."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.scoring.api.ranges import RangeEvaluations
from services.scoring.application import queries
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring

from .helpers import api_reading_at_once, apply_batches, load_reference, pin_clock, staff_headers
from .scenario import NOW, READ_AT, dossier_events

pytestmark = pytest.mark.integration

R1 = {"period": "2026-10-01..2026-10-06"}
R2 = {"period": "2026-10-02..2026-10-06"}


class Gate:
    """``evaluate_live`` held until released, counting its calls."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return await self.real(*args, **kwargs)


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``check`` until it holds, failing after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def api(clean: Scoring) -> FastAPI:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    assert "2026-10" in await refresh_once(clean, now=NOW)
    return pin_clock(api_reading_at_once(clean), READ_AT)


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as c:
        yield c


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate(queries.evaluate_live)
    monkeypatch.setattr(queries, "evaluate_live", g)
    yield g
    g.release.set()  # a failed test leaves no request waiting (the client would never close)


def ranges_of(api: FastAPI) -> RangeEvaluations:
    ranges: RangeEvaluations = api.state.ranges
    return ranges


async def test_identical_concurrent_ranges_share_one_evaluation_then_its_result(
    api: FastAPI, client: httpx.AsyncClient, gate: Gate
) -> None:
    ranges = ranges_of(api)
    asked = [asyncio.create_task(client.get("/api/v1/scores", params=R1)) for _ in range(5)]
    await asyncio.wait_for(gate.started.wait(), 10)
    await until(lambda: ranges.joins == 4)
    gate.release.set()
    answers = await asyncio.gather(*asked)
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.content for a in answers} == {answers[0].content}
    assert gate.calls == 1
    again = await client.get("/api/v1/scores", params=R1)  # kept: not judged again, same instant
    assert again.json() == answers[0].json() and gate.calls == 1
    other = await client.get("/api/v1/scores", params={**R1, "methodology": "portal-766"})
    assert other.status_code == 200 and gate.calls == 2  # one evaluation per (range, methodology)


async def test_distinct_ranges_beyond_the_bound_are_refused_with_503(
    api: FastAPI, client: httpx.AsyncClient, gate: Gate
) -> None:
    ranges_of(api).max_running = 1
    first = asyncio.create_task(client.get("/api/v1/scores", params=R1))
    await asyncio.wait_for(gate.started.wait(), 10)
    refused = await asyncio.wait_for(client.get("/api/v1/scores", params=R2), 10)  # at once, not queued
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"]["message"].startswith("Hệ thống đang tính")
    stored = await client.get("/api/v1/scores", params={"period": "2026-10"})  # stored periods still answer
    assert stored.status_code == 200
    gate.release.set()
    assert (await first).status_code == 200
    assert (await client.get("/api/v1/scores", params=R2)).status_code == 200  # free again
    assert gate.calls == 2


async def test_a_failed_evaluation_is_not_kept(api: FastAPI, client: httpx.AsyncClient, gate: Gate) -> None:
    real = gate.real

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("judging failed")

    gate.real = broken
    gate.release.set()
    assert (await client.get("/api/v1/scores", params=R1)).status_code == 500
    gate.real = real
    assert (await client.get("/api/v1/scores", params=R1)).status_code == 200
    assert gate.calls == 2 and not ranges_of(api)._running


async def test_range_drilldowns_share_the_bound(api: FastAPI, client: httpx.AsyncClient, gate: Gate) -> None:
    ranges_of(api).max_running = 1
    first = asyncio.create_task(client.get("/api/v1/scores", params=R1))
    await asyncio.wait_for(gate.started.wait(), 10)
    path = "/api/v1/scores/P01/indicators/2.1/dossiers"
    refused = await asyncio.wait_for(client.get(path, params=R2, headers=staff_headers(api.state.scoring)), 10)
    assert refused.status_code == 503
    gate.release.set()
    assert (await first).status_code == 200
    listed = await client.get(path, params=R2, headers=staff_headers(api.state.scoring))
    assert listed.status_code == 200, listed.text


async def test_a_range_not_done_in_time_answers_503_and_is_kept_when_done(
    api: FastAPI, client: httpx.AsyncClient, gate: Gate
) -> None:
    """A long evaluation answers 503 "still being computed" before the gateway would give up
    (504), goes on, and its result answers the next request."""
    ranges_of(api).wait_seconds = 0.05
    waited = await client.get("/api/v1/scores", params=R1)
    assert waited.status_code == 503, waited.text
    assert int(waited.headers["retry-after"]) > 0
    assert waited.json()["error"]["message"].startswith("Khoảng ngày này đang được tính")
    assert ranges_of(api)._running  # still going
    gate.release.set()
    await until(lambda: not ranges_of(api)._running)
    done = await client.get("/api/v1/scores", params=R1)
    assert done.status_code == 200 and gate.calls == 1  # the kept result, not judged again
