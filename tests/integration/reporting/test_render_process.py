"""Cached pages render in a render process: the API's event loop answers while a render runs."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.reporting.api.render_pool import RenderPool
from services.reporting.bootstrap import Reporting
from services.reporting.settings import ReportingSettings
from tests.integration.reporting.conftest import as_staff
from tests.integration.reporting.test_page_cache_and_changes import PERIOD, score

pytestmark = pytest.mark.integration


def hold_until(path: str) -> int:
    """A render that keeps its CPU busy until ``path`` exists; its process id."""
    while not os.path.exists(path):  # a busy CPU, in the render process
        pass
    return os.getpid()


async def test_a_cached_page_is_answered_while_a_render_holds_the_render_process(
    reporting: Reporting, reporting_app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await score(reporting, "P19", 75.5)
    first = await client.get("/ranking/P19", params={"period": PERIOD})
    assert first.status_code == 200 and "75.5" in first.text
    go = tmp_path / "go"
    pool: RenderPool = reporting_app.state.renderer
    busy = asyncio.ensure_future(pool.run(hold_until, str(go)))
    try:
        again = await client.get("/ranking/P19", params={"period": PERIOD})
        assert again.status_code == 200 and again.text == first.text  # from the cache…
        assert not busy.done()  # …while the render was still running
    finally:
        go.touch()
    assert await busy != os.getpid()  # in another process


async def test_a_killed_render_process_is_replaced(
    reporting: Reporting, reporting_app: FastAPI, client: httpx.AsyncClient
) -> None:
    pool: RenderPool = reporting_app.state.renderer
    before = await pool.run(os.getpid)
    os.kill(before, signal.SIGKILL)
    await score(reporting, "P20", 68.25)
    page = await client.get("/ranking/P20", params={"period": PERIOD, "n": uuid.uuid4().hex})
    assert page.status_code == 200 and "68.25" in page.text
    assert await pool.run(os.getpid) not in (before, os.getpid())


async def test_the_ranking_json_says_when_its_data_was_computed_and_pages_their_age(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    await score(reporting, "P21", 73.0)
    params = {"period": PERIOD, "level": "province"}
    r = await client.get("/api/v1/reports/ranking", params=params, headers=as_staff(settings, "CT"))
    body = r.json()
    assert r.status_code == 200 and body["computed_at"] and body["period"] == PERIOD
    assert any(i["unit_code"] == "P21" and i["total"] == 73.0 for i in body["items"])
    assert r.headers["content-type"] == "application/json" and int(r.headers["age"]) >= 0
