"""Reporting's dossier consumer on the driver's connection: a malformed event is skipped (the rest
applied), feed activity and its usual gap, a re-delivered batch rewrites no dossier, a row stored
before histories existed is folded on top, and every batch bumps the warnings' version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from services.reporting.adapters.changes import current_versions
from services.reporting.adapters.tables import dossier, feed
from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_dossier_events
from shared.messaging.topology import IncomingMessage
from tests.integration.reporting.conftest import message
from tests.integration.reporting.test_calendar_days import MONDAY, THURSDAY_END
from tests.integration.reporting.test_read_model import apply, dossier_batch

pytestmark = pytest.mark.integration


def received(d: str, unit: str = "P21", hours: float = 0) -> dict[str, Any]:
    return {
        "type": "dossier.received",
        "at": (MONDAY + timedelta(hours=hours)).isoformat(),
        "data": {"dossier_id": d, "unit_code": unit, "procedure_code": "T.DKT.01", "officer_id": "cb-1"},
    }


def batch(events: list[dict[str, Any]], source: str, accepted_at: datetime) -> IncomingMessage:
    return message("ingest.dossier-events.v1", dossier_batch(events, source) | {"accepted_at": accepted_at.isoformat()})


async def row(reporting: Reporting, table: Any, *where: Any) -> Any:
    async with reporting.sessions() as session:
        return (await session.execute(select(table).where(*where))).one()


async def test_a_malformed_event_is_skipped_and_the_rest_applied(reporting: Reporting) -> None:
    d = f"HS-BAD-{uuid.uuid4().hex[:8]}"
    body = dossier_batch([received(d)])
    body["events"] += [
        {"source": "tms-test", "event_id": "x1", "type": "dossier.received", "occurred_at": "hôm qua", "data": {}},
        {"source": "tms-test", "event_id": "x2", "type": "dossier.completed", "occurred_at": MONDAY.isoformat()},
        "not an event",
    ]
    await apply(
        reporting, on_dossier_events, IncomingMessage(f"bad-{d}", "ingest.dossier-events.v1", orjson.dumps(body))
    )
    r = await row(reporting, dossier, dossier.c.dossier_id == d)
    assert r.unit_code == "P21" and r.due_at == THURSDAY_END and r.finished_at is None


async def test_feed_activity_counts_batches_and_events_with_the_usual_gap(reporting: Reporting) -> None:
    source = f"tms-{uuid.uuid4().hex[:8]}"
    ids = [f"HS-FEED-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    t0 = datetime(2026, 10, 5, 3, 0, tzinfo=UTC)
    await apply(reporting, on_dossier_events, batch([received(ids[0]), received(ids[1], "P22", 2)], source, t0))
    first = await row(reporting, feed, feed.c.source == source, feed.c.unit_code == "P21")
    assert (first.batches, first.events, first.usual_gap_s) == (1, 1, None)
    assert first.last_accepted_at == t0 and first.last_occurred_at == MONDAY
    await apply(reporting, on_dossier_events, batch([received(ids[2], hours=1)], source, t0 + timedelta(seconds=60)))
    second = await row(reporting, feed, feed.c.source == source, feed.c.unit_code == "P21")
    assert (second.batches, second.events, second.usual_gap_s) == (2, 2, 60)
    assert second.last_occurred_at == MONDAY + timedelta(hours=1)
    # Half a second later: the same burst, the usual gap stays; then a 160 s gap weighs 1/5.
    await apply(reporting, on_dossier_events, batch([received(ids[2], hours=1)], source, t0 + timedelta(seconds=60.5)))
    await apply(reporting, on_dossier_events, batch([received(ids[0])], source, t0 + timedelta(seconds=220.5)))
    last = await row(reporting, feed, feed.c.source == source, feed.c.unit_code == "P21")
    assert (last.batches, last.events) == (4, 4)
    assert last.usual_gap_s == pytest.approx(0.8 * 60 + 0.2 * 160)
    other = await row(reporting, feed, feed.c.source == source, feed.c.unit_code == "P22")
    assert (other.batches, other.events) == (1, 1)


async def test_a_redelivered_batch_rewrites_no_dossier_but_is_counted(reporting: Reporting) -> None:
    d = f"HS-DUP-{uuid.uuid4().hex[:8]}"
    events = [received(d), {"type": "dossier.synced", "at": MONDAY.isoformat(), "data": {"dossier_id": d}}]
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch(events)))
    stored = await row(reporting, dossier, dossier.c.dossier_id == d)
    async with reporting.sessions() as session:
        versions = await current_versions(session)
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch(events)))
    again = await row(reporting, dossier, dossier.c.dossier_id == d)
    assert again.updated_at == stored.updated_at and again.history == stored.history
    async with reporting.sessions() as session:
        assert (await current_versions(session))["warnings"] > versions["warnings"]
    # A new fact is written: the dossier completes.
    done = {"type": "dossier.completed", "at": (MONDAY + timedelta(hours=3)).isoformat(), "data": {"dossier_id": d}}
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch([done])))
    finished = await row(reporting, dossier, dossier.c.dossier_id == d)
    assert finished.finish_kind == "completed" and finished.updated_at > stored.updated_at
    assert [e["type"] for e in finished.history] == ["dossier.received", "dossier.completed"]


async def test_a_row_stored_before_histories_is_folded_on_top(reporting: Reporting) -> None:
    d = f"HS-OLD-{uuid.uuid4().hex[:8]}"
    async with reporting.uow() as uow:
        await uow.session.execute(
            dossier.insert().values(
                dossier_id=d, unit_code="P23", unit_at=MONDAY, received_at=MONDAY, procedure_code="T.DKT.01"
            )
        )
    moved = {
        "type": "dossier.transferred",
        "at": (MONDAY + timedelta(hours=2)).isoformat(),
        "data": {"dossier_id": d, "to_unit_code": "P23.L01"},
    }
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch([moved])))
    r = await row(reporting, dossier, dossier.c.dossier_id == d)
    assert r.unit_code == "P23.L01" and r.due_at == THURSDAY_END and r.history is None
