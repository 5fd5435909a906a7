"""Feedback's dossier consumer against PostgreSQL: latest unit, first receiver, bad events, batches."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from typing import Any

import orjson
import pytest

from services.feedback.bootstrap import Feedback
from services.feedback.handlers.messages import on_dossier_events
from shared.contracts import DossierEventsAccepted
from shared.messaging.consumer import Consumer, Delivery
from shared.messaging.topology import IncomingMessage
from tests.integration.feedback.conftest import sql

pytestmark = pytest.mark.integration


def ev(dossier: str, kind: str, unit: str, at: str) -> dict[str, Any]:
    field = "unit_code" if kind == "dossier.received" else "to_unit_code"
    return {"source": "s", "event_id": uuid.uuid4().hex, "type": kind, "occurred_at": at,
            "data": {"dossier_id": dossier, field: unit}}  # fmt: skip


async def deliver(feedback: Feedback, *events: Any) -> None:
    body = orjson.dumps({"events": list(events)})
    async with feedback.uow() as uow:
        await on_dossier_events(IncomingMessage(uuid.uuid4().hex, DossierEventsAccepted.routing_key, body), uow)


async def row(feedback: Feedback, dossier: str) -> tuple[str, str | None]:
    rows = await sql(
        feedback, "SELECT unit_code, owner_unit_code FROM feedback.dossier_unit WHERE dossier_id = :d", d=dossier
    )
    assert len(rows) == 1
    return rows[0].unit_code, rows[0].owner_unit_code


async def test_later_events_win_and_the_owner_is_never_overwritten(feedback: Feedback) -> None:
    d = f"HS-{uuid.uuid4().hex[:10]}"
    await deliver(feedback, ev(d, "dossier.received", "P01", "2026-10-05T08:00:00+07:00"))
    assert await row(feedback, d) == ("P01", "P01")
    await deliver(feedback, ev(d, "dossier.transferred", "P02", "2026-10-06T08:00:00+07:00"))
    assert await row(feedback, d) == ("P02", "P01")
    # Late and older: neither the unit nor the owner moves, even for another receipt.
    await deliver(feedback, ev(d, "dossier.received", "P09", "2026-10-05T07:00:00+07:00"))
    assert await row(feedback, d) == ("P02", "P01")
    # The same instant in a later batch wins (as before: at equal times the last applied counts).
    await deliver(feedback, ev(d, "dossier.transferred", "P03", "2026-10-06T01:00:00+00:00"))
    assert await row(feedback, d) == ("P03", "P01")


async def test_a_redelivered_batch_rewrites_no_row(feedback: Feedback) -> None:
    d = f"HS-{uuid.uuid4().hex[:10]}"
    events = [
        ev(d, "dossier.received", "P01", "2026-10-05T08:00:00+07:00"),
        ev(d, "dossier.transferred", "P02", "2026-10-06T08:00:00+07:00"),
    ]
    await deliver(feedback, *events)
    xmin = "SELECT xmin::text AS x FROM feedback.dossier_unit WHERE dossier_id = :d"
    before = await sql(feedback, xmin, d=d)
    await deliver(feedback, *events)
    assert await sql(feedback, xmin, d=d) == before
    assert await row(feedback, d) == ("P02", "P01")


async def test_a_malformed_event_is_skipped_and_the_rest_applied(feedback: Feedback) -> None:
    good, bad = f"HS-{uuid.uuid4().hex[:10]}", f"HS-{uuid.uuid4().hex[:10]}"
    await deliver(
        feedback,
        ev(bad, "dossier.received", "P01", "not a time"),
        {"type": "dossier.received", "data": "nothing"},
        "not an event",
        ev(good, "dossier.received", "P04", "2026-10-05T08:00:00+07:00"),
    )
    assert await row(feedback, good) == ("P04", "P04")
    assert await sql(feedback, "SELECT 1 FROM feedback.dossier_unit WHERE dossier_id = :d", d=bad) == []


async def test_overlapping_batches_in_parallel_do_not_deadlock(feedback: Feedback) -> None:
    ids = [f"HS-{uuid.uuid4().hex[:10]}" for _ in range(300)]
    first = [ev(d, "dossier.received", "P01", "2026-10-05T08:00:00+07:00") for d in ids]
    second = [ev(d, "dossier.transferred", "P02", "2026-10-06T08:00:00+07:00") for d in reversed(ids)]
    await asyncio.wait_for(asyncio.gather(*(deliver(feedback, *b) for b in (first, second, first, second))), 60)
    units = await sql(
        feedback,
        "SELECT DISTINCT unit_code, owner_unit_code FROM feedback.dossier_unit WHERE dossier_id = ANY(:ids)",
        ids=ids,
    )
    assert [(u.unit_code, u.owner_unit_code) for u in units] == [("P02", "P01")]


async def test_messages_in_hand_are_one_upsert_with_the_state_of_one_by_one(feedback: Feedback) -> None:
    """Through the consumer: the batch handler gets every message at once and keeps, per dossier,
    what one message a transaction keeps (the latest unit, at the same instant the later
    message's; the first receiver as owner)."""
    from services.feedback.adapters.tables import inbox
    from services.feedback.subscriptions import SUBSCRIPTIONS

    sub = next(s for s in SUBSCRIPTIONS if DossierEventsAccepted.routing_key in s.routing_keys)
    consumer = Consumer(uow_factory=feedback.uow, inbox=inbox)
    run = uuid.uuid4().hex[:8]

    def burst(tag: str) -> list[IncomingMessage]:
        a, b, c = (f"HS-{tag}{run}-{k}" for k in "abc")
        rec, moved = "dossier.received", "dossier.transferred"
        per_message = [
            [ev(a, rec, "P01", "2026-10-05T08:00:00+07:00"), ev(b, moved, "P05", "2026-10-05T09:00:00+07:00")],
            [ev(a, moved, "P02", "2026-10-06T08:00:00+07:00"), ev(b, rec, "P04", "2026-10-05T08:00:00+07:00")],
            [ev(a, rec, "P09", "2026-10-05T07:00:00+07:00"), ev(c, rec, "P07", "2026-10-05T08:00:00+07:00")],
            [ev(a, moved, "P03", "2026-10-06T01:00:00+00:00"), ev(c, moved, "P08", "2026-10-05T01:00:00+00:00")],
        ]  # fmt: skip
        return [
            IncomingMessage(f"{tag}{run}-{n}", DossierEventsAccepted.routing_key, orjson.dumps({"events": events}))
            for n, events in enumerate(per_message)
        ]

    for m in burst("one"):
        assert await consumer.apply(sub, m)
    deliveries = [Delivery(m, contextvars.copy_context()) for m in burst("all")]
    await consumer.apply_batch(sub, deliveries)
    assert [await w.outcome for w in deliveries] == [True] * 4

    async def units(tag: str) -> list[tuple[str, str, str | None, int]]:
        rows = await sql(
            feedback,
            "SELECT dossier_id, unit_code, owner_unit_code, xmin::text AS tx FROM feedback.dossier_unit"
            " WHERE dossier_id LIKE :p ORDER BY 1",
            p=f"HS-{tag}{run}-%",
        )
        return [(r.dossier_id[-1], r.unit_code, r.owner_unit_code, r.tx) for r in rows]

    one, together = await units("one"), await units("all")
    assert [r[:3] for r in together] == [r[:3] for r in one]
    assert [r[:3] for r in one] == [("a", "P03", "P01"), ("b", "P05", "P04"), ("c", "P08", "P07")]
    assert len({r[3] for r in together}) == 1  # one transaction
