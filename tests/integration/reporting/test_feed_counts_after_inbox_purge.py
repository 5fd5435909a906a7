"""A dossier message re-driven from parking after the inbox purge forgot it (7 days) is applied
again — harmless to the read model, which depends on the set of events — and its feed counts
(batches, events) are not added twice: the inbox's triggers keep the purge's horizon, and only a
message accepted after it counts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from services.reporting.adapters.tables import inbox, outbox
from services.reporting.bootstrap import Reporting
from services.reporting.handlers.dossier_events import DOSSIER_QUEUE
from services.reporting.subscriptions import SUBSCRIPTIONS
from shared.contracts import DossierEventsAccepted
from shared.messaging.consumer import Consumer
from shared.messaging.housekeeping import purge_once
from shared.messaging.topology import IncomingMessage
from tests.integration.reporting.test_calendar_days import MONDAY

pytestmark = pytest.mark.integration
DOSSIERS = next(s for s in SUBSCRIPTIONS if s.queue == DOSSIER_QUEUE)
INBOX_KEEP = timedelta(days=7)  # run_housekeeping's default


@pytest.fixture
async def horizon_restored(reporting: Reporting) -> AsyncIterator[None]:
    """The horizon as it was after the test: the other tests date their messages in October 2026."""
    rows = await sql(reporting, "SELECT consumer, through FROM reporting.inbox_horizon")
    yield
    await sql(reporting, "DELETE FROM reporting.inbox_horizon")
    for r in rows:
        await sql(reporting, "INSERT INTO reporting.inbox_horizon VALUES (:c, :t)", c=r.consumer, t=r.through)


async def sql(reporting: Reporting, statement: str, **params: Any) -> list[Any]:
    async with reporting.uow() as uow:
        result = await uow.session.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


def batch(message_id: str, source: str, dossiers: list[str], accepted_at: datetime) -> IncomingMessage:
    events = [
        {
            "source": source,
            "event_id": f"{d}-received",
            "type": "dossier.received",
            "occurred_at": MONDAY.isoformat(),
            "data": {"dossier_id": d, "unit_code": "P21", "procedure_code": "T.DKT.01", "officer_id": "cb-1"},
        }
        for d in dossiers
    ]
    body = {"events": events, "accepted_at": accepted_at.isoformat()}
    return IncomingMessage(message_id, DossierEventsAccepted.routing_key, orjson.dumps(body))


async def read_model(reporting: Reporting, source: str, dossiers: list[str]) -> tuple[Any, list[Any]]:
    [feed] = await sql(reporting, "SELECT * FROM reporting.feed WHERE source = :s", s=source)
    rows = await sql(
        reporting,
        "SELECT * FROM reporting.dossier WHERE dossier_id = ANY(:d) ORDER BY dossier_id",
        d=dossiers,
    )
    return feed, [{k: v for k, v in r._mapping.items() if k != "updated_at"} for r in rows]


async def test_a_message_re_driven_after_the_inbox_purge_counts_once(
    reporting: Reporting, horizon_restored: None
) -> None:
    run = uuid.uuid4().hex[:8]
    source, dossiers = f"tms-redrive-{run}", [f"HS-REDRIVE-{run}-{k}" for k in range(2)]
    now = datetime.now(UTC)
    # Accepted and applied eight days ago; a copy of it was parked meanwhile (its ack lost after
    # the parking publish, say), and a person moves the parking queue back today.
    parked = batch(f"redrive-{run}", source, dossiers, now - timedelta(days=8))
    consumer = Consumer(uow_factory=reporting.uow, inbox=inbox)
    assert await consumer.apply(DOSSIERS, parked)
    assert not await consumer.apply(DOSSIERS, parked)  # while its inbox row is kept: a duplicate
    first_feed, first_dossiers = await read_model(reporting, source, dossiers)
    assert (first_feed.batches, first_feed.events) == (1, 2)
    await sql(
        reporting,
        "UPDATE reporting.inbox SET received_at = :at WHERE consumer = :c AND message_id = :m",
        at=now - timedelta(days=8) + timedelta(seconds=2),
        c=DOSSIER_QUEUE,
        m=parked.message_id,
    )
    assert await purge_once(reporting.engine, outbox=outbox, inbox=inbox, keep=INBOX_KEEP) >= 1

    assert await consumer.apply(DOSSIERS, parked)  # the inbox forgot it: applied again
    feed, dossier_rows = await read_model(reporting, source, dossiers)
    assert dossier_rows == first_dossiers  # the read model depends on the set of events
    assert feed._asdict() == first_feed._asdict()  # and its feed counts it once

    # A message accepted after the horizon counts as before.
    fresh = batch(f"fresh-{run}", source, [f"HS-REDRIVE-{run}-2"], now)
    assert await consumer.apply(DOSSIERS, fresh)
    feed, _ = await read_model(reporting, source, dossiers)
    assert (feed.batches, feed.events, feed.last_accepted_at) == (2, 3, now)


async def test_the_horizon_is_the_latest_row_purged_or_truncated(reporting: Reporting, horizon_restored: None) -> None:
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    old, older, recent = now - timedelta(days=9), now - timedelta(days=10), now - timedelta(days=1)
    await sql(
        reporting,
        "INSERT INTO reporting.inbox (consumer, message_id, received_at) VALUES"
        " (:c, :m1, :old), (:c, :m2, :older), (:c, :m3, :recent), ('reporting.other', :m4, :recent)",
        c=DOSSIER_QUEUE,
        m1=f"old-{run}",
        m2=f"older-{run}",
        m3=f"recent-{run}",
        m4=f"other-{run}",
        old=old,
        older=older,
        recent=recent,
    )
    await purge_once(reporting.engine, outbox=outbox, inbox=inbox, keep=INBOX_KEEP)
    horizon = "SELECT consumer, through FROM reporting.inbox_horizon WHERE consumer IN (:c, 'reporting.other')"
    assert [tuple(r) for r in await sql(reporting, horizon, c=DOSSIER_QUEUE)] == [(DOSSIER_QUEUE, old)]
    # A TRUNCATE (a person's clean-up) moves it to the latest row it took; rolled back here.
    async with reporting.engine.connect() as conn, conn.begin() as tx:
        await conn.execute(text("TRUNCATE reporting.inbox"))
        moved = {r.consumer: r.through for r in await conn.execute(text(horizon), {"c": DOSSIER_QUEUE})}
        await tx.rollback()
    assert moved[DOSSIER_QUEUE] >= recent and moved["reporting.other"] == recent
