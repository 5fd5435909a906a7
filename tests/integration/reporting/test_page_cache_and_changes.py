"""Public pages render once per version of the scores; the worker's NOTIFY reaches the API."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.reporting.api import page_cache
from services.reporting.api.live import ChangeFeed
from services.reporting.api.page_cache import PageCache
from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_dossier_events, on_scores_updated, on_units_changed
from services.reporting.settings import ReportingSettings
from tests.integration.reporting.conftest import as_staff, message
from tests.integration.reporting.test_read_model import apply, dossier_batch, score_body

pytestmark = pytest.mark.integration
PERIOD = "2025-07"


@pytest.fixture(autouse=True)
def one_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """What moves with time alone (the page cache's minute clock) stands still: a test that
    crossed a minute's end re-rendered its page and saw a render more than it counted. Still at
    the minute it is, not at 0: the app's page caches live for the session, and a page another
    module cached under the real clock would look newer than any stamped 0 (served forever)."""
    now = page_cache.clock()
    monkeypatch.setattr(page_cache, "clock", lambda: now)


async def until(check: Callable[[], Any], what: str, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within_s} s: {what}")


async def score(reporting: Reporting, code: str, total: float) -> None:
    body = score_body(code, total, 9, period=PERIOD)
    await apply(reporting, on_scores_updated, message("scoring.scores-updated.v3", body))


async def test_a_public_page_renders_once_per_version_with_an_etag(
    reporting: Reporting, reporting_app: FastAPI, client: httpx.AsyncClient
) -> None:
    pages = reporting_app.state.pages
    await score(reporting, "P09", 77.25)
    first = await client.get("/", params={"period": PERIOD})
    assert first.status_code == 200 and "77.25" in first.text
    assert first.headers["cache-control"] == "no-cache" and first.headers["etag"].startswith('"')
    renders = pages.renders
    again = await client.get("/", params={"period": PERIOD})
    assert pages.renders == renders and again.text == first.text  # from the cache
    assert again.headers["etag"] == first.headers["etag"]
    unchanged = await client.get("/", params={"period": PERIOD}, headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    # The language is part of the key; so is the province page's path.
    english = await client.get("/", params={"period": PERIOD, "lang": "en"})
    assert "Data as of" in english.text and english.headers["etag"] != first.headers["etag"]
    province = await client.get("/ranking/P09", params={"period": PERIOD})
    assert province.status_code == 200 and "77.25" in province.text
    assert (await client.get("/ranking/NOPE")).status_code == 404  # errors are never cached
    # A dossier batch changes warnings, not what the public pages show: still from the cache.
    d = f"HS-{uuid.uuid4().hex[:10]}"
    at = datetime.now(UTC).isoformat()
    event = {"type": "dossier.received", "at": at, "data": {"dossier_id": d, "unit_code": "P09"}}
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch([event])))
    renders = pages.renders
    assert (await client.get("/", params={"period": PERIOD})).headers["etag"] == first.headers["etag"]
    assert pages.renders == renders
    # A new score is a new version: the next request renders it, with a new ETag.
    await score(reporting, "P09", 66.5)
    after = await client.get("/", params={"period": PERIOD}, headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200 and "66.5" in after.text and "77.25" not in after.text
    assert after.headers["etag"] != first.headers["etag"] and pages.renders == renders + 1


async def test_the_ranking_api_is_cached_per_scope(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    await score(reporting, "P10", 71.0)
    params = {"period": PERIOD, "level": "province"}
    national = await client.get("/api/v1/reports/ranking", params=params, headers=as_staff(settings, "CT"))
    assert national.status_code == 200 and any(i["unit_code"] == "P10" for i in national.json()["items"])
    local = await client.get("/api/v1/reports/ranking", params=params, headers=as_staff(settings, "P11", "unit_head"))
    assert local.status_code == 200 and {i["unit_code"] for i in local.json()["items"]} <= {"P11"}
    again = await client.get(
        "/api/v1/reports/ranking",
        params=params,
        headers={**as_staff(settings, "CT"), "If-None-Match": national.headers["etag"]},
    )
    assert again.status_code == 304
    assert (await client.get("/api/v1/reports/ranking", params=params)).status_code == 401


@contextlib.asynccontextmanager
async def listening(feed: ChangeFeed) -> AsyncIterator[None]:
    task = asyncio.create_task(feed.run())
    try:
        await until(lambda: feed.connected, "the listener connects")
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_worker_notify_reaches_the_listener_and_its_clients(
    reporting: Reporting, reporting_app: FastAPI, client: httpx.AsyncClient
) -> None:
    feed: ChangeFeed = reporting_app.state.changes
    async with listening(feed):
        before = dict(feed.versions)
        with feed.subscribe() as live:
            await score(reporting, "P12", 80.5)
            assert "scores" in await live.wait(10)
            assert feed.versions["scores"] > before["scores"]
            d = f"HS-{uuid.uuid4().hex[:10]}"
            event = {"type": "dossier.received", "at": datetime.now(UTC).isoformat(), "data": {"dossier_id": d}}
            await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch([event])))
            assert await live.wait(10) == {"warnings"}
        assert feed.clients == 0
        # While listening, the page key comes from what was heard (no read), and a change shows.
        first = await client.get("/ranking/P12", params={"period": PERIOD})
        version = feed.versions["scores"]
        await score(reporting, "P12", 70.25)
        await until(lambda: feed.versions["scores"] > version, "the NOTIFY is heard")
        second = await client.get("/ranking/P12", params={"period": PERIOD})
        assert "70.25" in second.text and second.headers["etag"] != first.headers["etag"]


async def test_a_renamed_unit_shows_at_once_on_the_cached_page(
    reporting: Reporting, reporting_app: FastAPI, client: httpx.AsyncClient
) -> None:
    def units(name: str) -> Any:
        body = {"units": [{"code": "P09.L01", "name": name, "level": "local", "parent_code": "P09"}]}
        return message("ingest.units-changed.v1", body)

    await apply(reporting, on_units_changed, units("Thuế cơ sở 1 tỉnh cũ"))
    await score(reporting, "P09.L01", 70.0)
    first = await client.get("/ranking/P09", params={"period": PERIOD})
    assert "Thuế cơ sở 1 tỉnh cũ" in first.text
    await apply(reporting, on_units_changed, units("Thuế cơ sở 1 tỉnh mới"))
    renamed = await client.get("/ranking/P09", params={"period": PERIOD})
    assert "Thuế cơ sở 1 tỉnh mới" in renamed.text and renamed.headers["etag"] != first.headers["etag"]


async def test_a_young_page_is_served_while_the_new_one_renders_in_the_background(
    reporting: Reporting, reporting_app: FastAPI, client: httpx.AsyncClient
) -> None:
    saved = reporting_app.state.pages
    reporting_app.state.pages = pages = PageCache(stale_s=60, rerender_s=0)
    try:
        await score(reporting, "P18", 81.25)
        first = await client.get("/ranking/P18", params={"period": PERIOD})
        assert "81.25" in first.text
        await score(reporting, "P18", 82.75)
        stale = await client.get("/ranking/P18", params={"period": PERIOD})
        assert "81.25" in stale.text  # at once, from the cache; the new version renders meanwhile
        await until(lambda: pages.renders == 2, "the background render")
        fresh = await client.get("/ranking/P18", params={"period": PERIOD})
        assert "82.75" in fresh.text and pages.renders == 2
    finally:
        reporting_app.state.pages = saved


async def test_a_transaction_of_several_score_messages_bumps_the_scores_version_once(reporting: Reporting) -> None:
    from services.reporting.adapters.changes import current_versions

    async with reporting.sessions() as session:
        before = (await current_versions(session))["scores"]
    async with reporting.uow() as uow:  # as the consumer applies deliveries in hand together
        for code, total in (("P12", 61.5), ("P13", 62.5), ("P14", 63.5)):
            await on_scores_updated(
                message("scoring.scores-updated.v3", score_body(code, total, 9, period=PERIOD)), uow
            )
    async with reporting.sessions() as session:
        assert (await current_versions(session))["scores"] == before + 1
