"""Scoring's dossier-events subscription through the consumer: a burst of messages is applied in
one transaction with one handler call, to the same state as one message a transaction; each
flagged dossier keeps the acceptance time and the trace of its own message."""

from __future__ import annotations

import contextvars
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from services.scoring.adapters.tables import inbox
from services.scoring.bootstrap import Scoring
from services.scoring.subscriptions import SUBSCRIPTIONS
from shared.contracts import DossierEventsAccepted, RawEvent
from shared.messaging.consumer import Consumer, Delivery
from shared.messaging.topology import IncomingMessage
from shared.unit_of_work import UnitOfWork

from .scenario import dossier_events

pytestmark = pytest.mark.integration
DOSSIER_EVENTS = next(s for s in SUBSCRIPTIONS if DossierEventsAccepted.routing_key in s.routing_keys)
ACCEPTED = datetime(2026, 10, 20, 3, 0, tzinfo=UTC)


def traceparent(n: int) -> str:
    return f"00-{n + 1:032x}-{n + 1:016x}-01"


def messages(tag: str, events: list[RawEvent]) -> list[IncomingMessage]:
    """The events in messages of three, each with its own acceptance time and trace; the last
    one repeats the first one's events (a dossier system resending): no new event."""
    chunks: list[list[RawEvent]] = [events[i : i + 3] for i in range(0, len(events), 3)] + [events[:3]]
    return [
        IncomingMessage(
            f"{tag}-{n}",
            DossierEventsAccepted.routing_key,
            orjson.dumps(
                {
                    "events": [e.model_dump() for e in chunk],
                    "accepted_at": (ACCEPTED + timedelta(seconds=(7 * n) % 11)).isoformat(),
                }
            ),
            traceparent(n),
        )
        for n, chunk in enumerate(chunks)
    ]


# A dossier's flags as judging takes them (one row per batch: a burst in one transaction makes
# fewer rows than the same batches one by one): the earliest acceptance, the latest trace.
_FLAGS = """
SELECT dossier_id, min(accepted_at) AS accepted_at,
    (array_agg(traceparent ORDER BY id DESC) FILTER (WHERE traceparent IS NOT NULL))[1] AS traceparent
FROM scoring.dossier_flag GROUP BY dossier_id ORDER BY 1
"""


async def state(app: Scoring) -> tuple[list[Any], list[Any]]:
    async with app.sessions() as s:
        events = (
            await s.execute(
                text("SELECT source, event_id, dossier_id, type, occurred_at, data FROM scoring.dossier_event")
            )
        ).all()
        dossiers = (await s.execute(text(_FLAGS))).all()
    return sorted(events), list(dossiers)


async def transactions(app: Scoring, table: str, where: str = "true") -> int:
    async with app.sessions() as s:
        return int(await s.scalar(text(f"SELECT count(DISTINCT xmin::text) FROM scoring.{table} WHERE {where}")) or 0)


def in_hand(batch: list[IncomingMessage]) -> list[Delivery]:
    return [Delivery(m, contextvars.copy_context()) for m in batch]


async def test_a_burst_is_one_transaction_one_call_and_the_state_of_one_by_one(clean: Scoring) -> None:
    consumer = Consumer(uow_factory=clean.uow, inbox=inbox)
    events = dossier_events()
    for m in messages("one", events):
        assert await consumer.apply(DOSSIER_EVENTS, m)
    one_by_one = await state(clean)
    async with clean.uow() as uow:
        await uow.session.execute(text("TRUNCATE scoring.dossier_event, scoring.dossier, scoring.dossier_flag"))

    calls: list[list[str]] = []

    async def counted(batch: list[IncomingMessage], uow: UnitOfWork) -> None:
        calls.append([m.message_id for m in batch])
        assert DOSSIER_EVENTS.batch_handler is not None
        await DOSSIER_EVENTS.batch_handler(batch, uow)

    sub = replace(DOSSIER_EVENTS, batch_handler=counted)
    burst = messages("burst", events)
    assert await consumer.apply(sub, burst[0])  # applied before the burst: a duplicate in it
    calls.clear()
    deliveries = in_hand([*burst, burst[2]])  # …and a message delivered twice within the burst
    await consumer.apply_batch(sub, deliveries)
    assert [await d.outcome for d in deliveries] == [False] + [True] * (len(burst) - 1) + [False]
    assert calls == [[m.message_id for m in burst[1:]]]
    assert await transactions(clean, "inbox", "message_id LIKE 'burst-%' AND message_id <> 'burst-0'") == 1
    assert await state(clean) == one_by_one

    dossiers = {row.dossier_id: row for row in one_by_one[1]}
    # A dossier keeps the earliest acceptance and the latest trace of the messages that brought
    # it a new event (the repeat of the first message brings none).
    for d, row in dossiers.items():
        mine = [n for n, m in enumerate(burst[:-1]) if d.encode() in m.body]
        assert row.traceparent == traceparent(mine[-1])
        assert row.accepted_at == min(ACCEPTED + timedelta(seconds=(7 * n) % 11) for n in mine)
    assert len({row.traceparent for row in dossiers.values()}) > 1


async def test_a_poisoned_message_fails_alone_and_the_burst_is_applied(clean: Scoring) -> None:
    consumer = Consumer(uow_factory=clean.uow, inbox=inbox)
    burst = messages("poison", dossier_events())
    poisoned = IncomingMessage("poison-bad", DossierEventsAccepted.routing_key, b'{"events": "not a list"}')
    deliveries = in_hand([*burst[:3], poisoned, *burst[3:]])
    await consumer.apply_batch(DOSSIER_EVENTS, deliveries)
    with pytest.raises(ValueError):
        await deliveries[3].outcome
    assert all([await d.outcome for n, d in enumerate(deliveries) if n != 3])
    events, _ = await state(clean)
    assert len(events) == len(dossier_events())
