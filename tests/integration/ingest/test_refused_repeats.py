"""A changed resend repeated inside one request is a conflict every time, never a duplicate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from services.ingest import handlers
from services.ingest.bootstrap import Ingest
from services.ingest.settings import IngestSettings
from shared.unit_of_work import UnitOfWork
from tests.integration.ingest.conftest import headers, integrator, new_id, received, sql

pytestmark = pytest.mark.integration


async def test_a_changed_resend_sent_twice_in_one_request_is_two_conflicts(
    client: httpx.AsyncClient, settings: IngestSettings, ingest: Ingest
) -> None:
    source, key = "tms-audit-resend", integrator("tms-audit-resend", "P01")
    dossier = new_id()
    first = received(source, dossier, channel="online")
    stored = await client.post("/api/v1/events", json=[first], headers=headers(settings, key))
    assert stored.status_code == 200 and stored.json()["accepted"] == 1, stored.text
    changed = received(source, dossier, channel="counter")  # same event id, another body
    answer = await client.post("/api/v1/events", json=[changed, changed], headers=headers(settings, key))
    # Nothing was accepted: the whole request is refused, each copy with the conflict's reason.
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["accepted"] == 0 and body["duplicates"] == 0 and body["rating_codes"] == {}
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert all("conflict" in r["errors"][0]["reason"] for r in body["rejected"])
    # The first version stays.
    logged = await sql(
        ingest, "SELECT body->'data'->>'channel' AS c FROM ingest.event_log WHERE dossier_id = :d", d=dossier
    )
    assert [r.c for r in logged] == ["online"]
    feed = await sql(ingest, "SELECT duplicates, rejected FROM ingest.feed_day WHERE source = :s", s=source)
    assert [(r.duplicates, r.rejected) for r in feed] == [(0, 2)]


async def test_a_receipt_that_lost_the_race_repeated_in_its_request_gets_no_code(ingest: Ingest) -> None:
    """The loser's repeated receipt is a conflict too: no duplicate counted, no code for a unit
    that does not own the dossier."""
    dossier = new_id()
    reference = await ingest.reference.get()

    async def receive(uow: UnitOfWork, source: str, unit: str, copies: int) -> handlers.IngestResult:
        event = received(source, dossier, unit=unit, event_id=f"{source}:{dossier}")
        return await handlers.ingest_events(
            [event] * copies,
            principal=integrator(source, unit),
            uow=uow,
            reference=reference,
            rating_codes=ingest.rating_codes,
            now=datetime.now(UTC),
        )

    async with ingest.uow() as first:
        won = await receive(first, "tms-audit-p29", "P29", 1)

        async def second() -> handlers.IngestResult:
            async with ingest.uow() as uow:
                return await receive(uow, "tms-audit-p28", "P28", 2)

        racing = asyncio.create_task(second())
        deadline = asyncio.get_running_loop().time() + 30
        blocked = (
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        while (await sql(ingest, blocked))[0].n == 0:
            assert asyncio.get_running_loop().time() < deadline, "the second receipt never waited for the first"
            await asyncio.sleep(0.05)
    lost = await asyncio.wait_for(racing, timeout=30)
    assert won.accepted == 1
    assert lost.accepted == 0 and lost.duplicates == 0 and lost.rating_codes == {}
    assert sorted(r.index for r in lost.rejected) == [0, 1]
    assert all("conflict" in r.errors[0]["reason"] for r in lost.rejected)
