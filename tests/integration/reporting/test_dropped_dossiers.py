"""A dossier the retention sweep dropped stays dropped (hồ sơ đã xoá khỏi mô hình đọc): a late event
of it — a dossier system back-filling a step under a new event key, which ingest does not dedupe —
must not bring it back from that event alone, open and overdue in the warnings for good."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_dossier_events
from services.reporting.settings import ReportingSettings
from services.reporting.worker import drop_finished_dossiers, sweep_chunk
from shared.calendar import VN_TZ
from tests.integration.reporting.conftest import as_staff, message

pytestmark = pytest.mark.integration


def event(kind: str, when: datetime, dossier: str, **data: Any) -> dict[str, Any]:
    return {
        "source": "tms-late",
        "event_id": uuid.uuid4().hex,  # a new key each time: ingest accepts it again
        "type": kind,
        "occurred_at": when.isoformat(),
        "data": {"dossier_id": dossier, **data},
    }


def received(when: datetime, dossier: str) -> dict[str, Any]:
    return event("dossier.received", when, dossier, unit_code="P07", procedure_code="T.DKT.01", officer_id="cb")


async def _deliver(reporting: Reporting, *events: dict[str, Any]) -> None:
    batch = {"events": list(events), "accepted_at": datetime.now(UTC).isoformat()}
    async with reporting.uow() as uow:
        await on_dossier_events(message("ingest.dossier-events.v1", batch), uow)


async def _scalar(reporting: Reporting, sql: str, **params: Any) -> Any:
    async with reporting.sessions() as session:
        return await session.scalar(text(sql), params)


async def _row_count(reporting: Reporting, dossier: str) -> int:
    return int(await _scalar(reporting, "SELECT count(*) FROM reporting.dossier WHERE dossier_id = :d", d=dossier))


async def _tombstoned(reporting: Reporting, dossier: str) -> bool:
    sql = "SELECT count(*) FROM reporting.dropped_dossier WHERE dossier_id = :d"
    return bool(await _scalar(reporting, sql, d=dossier))


async def _age_last_event(reporting: Reporting, dossier: str, days: int) -> None:
    """As if the dossier's last event had arrived ``days`` ago (the sweep's second condition)."""
    async with reporting.uow() as uow:
        await uow.session.execute(
            text("UPDATE reporting.dossier SET updated_at = now() - make_interval(days => :n) WHERE dossier_id = :d"),
            {"n": days, "d": dossier},
        )


async def _warned(client: httpx.AsyncClient, settings: ReportingSettings, dossier: str) -> dict[str, str]:
    answer = await client.get("/api/v1/warnings", params={"unit": "P07"}, headers=as_staff(settings, "P07"))
    assert answer.status_code == 200, answer.text
    return {i["dossier_id"]: i["kind"] for i in answer.json()["items"] if i["dossier_id"] == dossier}


def backfilled_step(now: datetime, dossier: str) -> dict[str, Any]:
    """A supplement request 58 days ago the dossier system never sent (the dossier lacks it)."""
    return event("dossier.supplement_requested", now - timedelta(days=58), dossier, reason="thiếu tờ khai")


async def _finished_and_aged(reporting: Reporting, days: int = 50) -> tuple[str, datetime]:
    """A dossier received ``days`` + 10 days ago, completed and last heard of ``days`` ago."""
    now = datetime.now(VN_TZ)
    d = f"HS-LATE-{uuid.uuid4().hex[:8]}"
    completed = event("dossier.completed", now - timedelta(days=days), d)
    await _deliver(reporting, received(now - timedelta(days=days + 10), d), completed)
    await _age_last_event(reporting, d, days)
    return d, now


async def _finished_and_swept(reporting: Reporting, days: int = 50) -> tuple[str, datetime]:
    d, now = await _finished_and_aged(reporting, days)
    assert await drop_finished_dossiers(reporting, datetime.now(UTC)) >= 1
    assert await _row_count(reporting, d) == 0
    return d, now


async def test_a_late_event_of_a_swept_dossier_does_not_reopen_it(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    d, now = await _finished_and_swept(reporting)
    # The dossier system back-fills its receipt and a supplement step under new keys.
    await _deliver(reporting, received(now - timedelta(days=60), d))
    assert await _warned(client, settings, d) == {}, "a swept dossier is listed again (overdue)"
    await _deliver(reporting, backfilled_step(now, d))
    assert await _row_count(reporting, d) == 0, "a swept dossier was recreated"


async def test_events_of_other_dossiers_in_the_same_batch_still_fold(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    d, now = await _finished_and_swept(reporting)
    other = f"HS-LATE-{uuid.uuid4().hex[:8]}"
    await _deliver(reporting, received(now - timedelta(days=60), d), received(now - timedelta(days=60), other))
    assert await _row_count(reporting, d) == 0
    assert await _warned(client, settings, other) == {other: "overdue"}


async def test_tombstones_are_purged_after_their_keep_and_older_events_stay_out(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    keep = settings.reporting_dropped_keep_days
    d, now = await _finished_and_swept(reporting, days=settings.reporting_finished_keep_days + keep + 30)
    assert await _tombstoned(reporting, d)
    try:
        async with reporting.uow() as uow:  # as if dropped longer ago than tombstones are kept
            await uow.session.execute(
                text("UPDATE reporting.dropped_dossier SET dropped_at = dropped_at - make_interval(days => :n)"),
                {"n": keep + 1},
            )
        await drop_finished_dossiers(reporting, datetime.now(UTC))
        assert not await _tombstoned(reporting, d), "the tombstone outlived its keep"
        # Its late receipt (before its finish, so before the horizon) stays out, as does a dossier
        # first heard of with only events that old; one with a recent event is taken in.
        old = now - timedelta(days=settings.reporting_finished_keep_days + keep + 40)
        first_heard = f"HS-LATE-{uuid.uuid4().hex[:8]}"
        recent = f"HS-LATE-{uuid.uuid4().hex[:8]}"
        transferred = event("dossier.transferred", now - timedelta(days=3), recent, to_unit_code="P07")
        await _deliver(reporting, received(old, d), received(old, first_heard), received(old, recent), transferred)
        assert await _row_count(reporting, d) == 0, "a forgotten dossier was recreated"
        assert await _row_count(reporting, first_heard) == 0
        assert await _warned(client, settings, d) == {}
        assert await _warned(client, settings, recent) == {recent: "overdue"}
    finally:  # the horizon is the database's: the other tests' old events must still fold
        async with reporting.uow() as uow:
            await uow.session.execute(text("DELETE FROM reporting.dropped_horizon"))


_WAITING = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    " AND pid <> pg_backend_pid()"
)


async def _until_waiting(reporting: Reporting, task: asyncio.Task[Any]) -> None:
    """Until another transaction of this database waits for a lock (or ``task`` ended)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not task.done() and not await _scalar(reporting, _WAITING):
        assert loop.time() < deadline, "the batch neither finished nor waited"
        await asyncio.sleep(0.02)


async def test_an_event_arriving_while_the_sweep_drops_its_dossier_does_not_recreate_it(
    reporting: Reporting, settings: ReportingSettings
) -> None:
    # A dossier finished and aged as in the tests above, not swept yet.
    d, now = await _finished_and_aged(reporting)
    cutoff = datetime.now(UTC) - timedelta(days=settings.reporting_finished_keep_days)
    # The sweep's transaction has deleted the row, uncommitted, when a back-filled step's batch
    # starts (a step the dossier lacked: the batch writes its row).
    step = backfilled_step(now, d)
    async with reporting.uow() as sweep:
        assert await sweep_chunk(sweep, cutoff, after="") is not None
        late = asyncio.create_task(_deliver(reporting, step))
        await _until_waiting(reporting, late)
        assert not late.done(), "the batch did not wait for the sweep"
    await late
    assert await _row_count(reporting, d) == 0, "the batch recreated the row the sweep dropped"
    assert await _tombstoned(reporting, d)


async def test_a_sweep_starting_while_a_batch_folds_the_dossier_keeps_it(reporting: Reporting) -> None:
    # The other order: a batch folding an event of the dossier holds it; the sweep waits for it and
    # then keeps the row (its last event just arrived), with no tombstone.
    d, now = await _finished_and_aged(reporting)
    # A back-filled step the dossier did not have: the batch writes the row.
    batch = {"events": [backfilled_step(now, d)], "accepted_at": datetime.now(UTC).isoformat()}
    async with reporting.uow() as uow:
        await on_dossier_events(message("ingest.dossier-events.v1", batch), uow)
        sweep = asyncio.create_task(drop_finished_dossiers(reporting, datetime.now(UTC)))
        await _until_waiting(reporting, sweep)
    await sweep
    assert await _row_count(reporting, d) == 1
    assert not await _tombstoned(reporting, d)
