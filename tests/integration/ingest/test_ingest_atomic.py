"""Item 1: a request's claim, raw-log COPY, dossier rows and outbox rows commit together or not at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.ingest import handlers
from services.ingest.adapters import repository
from services.ingest.bootstrap import Ingest
from services.ingest.settings import IngestSettings
from shared.unit_of_work import UnitOfWork
from tests.integration.ingest.conftest import headers, ingest_records, integrator, new_id, received, sql

pytestmark = pytest.mark.integration

SOURCE = "tms-atomic"


async def _traces(ingest: Ingest, dossier_id: str) -> dict[str, int]:
    counts = {}
    for table, column in (("event_key", "event_id"), ("event_log", "event_id"), ("dossier", "dossier_id")):
        rows = await sql(ingest, f"SELECT count(*) AS n FROM ingest.{table} WHERE {column} LIKE :p", p=f"{dossier_id}%")
        counts[table] = rows[0].n
    rows = await sql(
        ingest, "SELECT count(*) AS n FROM ingest.outbox WHERE convert_from(body, 'UTF8') LIKE :p", p=f"%{dossier_id}%"
    )
    counts["outbox"] = rows[0].n
    return counts


async def _ingest(ingest: Ingest, records: list[dict[str, Any]], uow: UnitOfWork) -> handlers.IngestResult:
    return await ingest_records(ingest, records, uow, source=SOURCE)


async def test_a_failed_outbox_insert_claims_nothing_and_a_resend_is_accepted(
    ingest: Ingest, client: httpx.AsyncClient, settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    dossier = new_id()
    before = await _traces(ingest, dossier)

    async def broken_outbox(self: UnitOfWork) -> None:
        raise RuntimeError("outbox insert failed")

    with monkeypatch.context() as patch:
        patch.setattr(UnitOfWork, "_flush_outbox", broken_outbox)
        with pytest.raises(RuntimeError, match="outbox insert failed"):
            async with ingest.uow() as uow:
                await _ingest(ingest, [received(SOURCE, dossier)], uow)
    assert await _traces(ingest, dossier) == before == {"event_key": 0, "event_log": 0, "dossier": 0, "outbox": 0}
    resent = await client.post(
        "/api/v1/events", json=[received(SOURCE, dossier)], headers=headers(settings, integrator(SOURCE, "P01"))
    )
    assert resent.status_code == 200, resent.text
    assert resent.json()["accepted"] == 1 and resent.json()["duplicates"] == 0
    assert await _traces(ingest, dossier) == {"event_key": 1, "event_log": 1, "dossier": 1, "outbox": 1}


async def test_a_request_cancelled_after_the_claim_commits_nothing(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    dossier = new_id()
    claimed = asyncio.Event()
    real_append = repository.append_events

    async def slow_append(conn: Any, records: Any) -> None:
        await real_append(conn, records)  # the COPY went through: now hang like a stuck client
        claimed.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(repository, "append_events", slow_append)

    async def request() -> None:
        async with ingest.uow() as uow:
            await _ingest(ingest, [received(SOURCE, dossier)], uow)

    task = asyncio.create_task(request())
    await asyncio.wait_for(claimed.wait(), timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.setattr(repository, "append_events", real_append)
    assert await _traces(ingest, dossier) == {"event_key": 0, "event_log": 0, "dossier": 0, "outbox": 0}
    async with ingest.uow() as uow:
        result = await _ingest(ingest, [received(SOURCE, dossier)], uow)
    assert result.accepted == 1 and result.duplicates == 0


async def test_two_units_racing_to_receive_one_dossier_leave_one_owner(ingest: Ingest) -> None:
    """Both requests pass the owner check before either commits; the insert decides, and the
    loser's receipt becomes a conflict whose event key is given back — its repeat in the same
    request too: no duplicate counted, no rating code for a unit that does not own the dossier."""
    dossier = new_id()
    reference = await ingest.reference.get()

    async def receive(uow: UnitOfWork, source: str, unit: str, copies: int = 1) -> handlers.IngestResult:
        return await handlers.ingest_events(
            [received(source, dossier, unit=unit, event_id=f"{source}:{dossier}")] * copies,
            principal=integrator(source, unit),
            uow=uow,
            reference=reference,
            rating_codes=ingest.rating_codes,
            now=datetime.now(UTC),
        )

    async with ingest.uow() as first:
        won = await receive(first, "tms-p29", "P29")

        async def second() -> handlers.IngestResult:
            async with ingest.uow() as uow:
                return await receive(uow, "tms-p28", "P28", copies=2)

        racing = asyncio.create_task(second())
        deadline = asyncio.get_running_loop().time() + 30
        blocked = (
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        while (await sql(ingest, blocked))[0].n == 0:
            assert asyncio.get_running_loop().time() < deadline, "the second receipt never waited for the first"
            await asyncio.sleep(0.05)
    lost = await asyncio.wait_for(racing, timeout=30)
    assert won.accepted == 1 and lost.accepted == 0 and lost.duplicates == 0 and lost.rating_codes == {}
    assert sorted(r.index for r in lost.rejected) == [0, 1]
    assert all("conflict" in r.errors[0]["reason"] for r in lost.rejected)
    keys = await sql(ingest, "SELECT source FROM ingest.event_key WHERE event_id LIKE :p", p=f"%{dossier}")
    logged = await sql(ingest, "SELECT source FROM ingest.event_log WHERE dossier_id = :d", d=dossier)
    assert [r.source for r in keys] == [r.source for r in logged] == ["tms-p29"]
