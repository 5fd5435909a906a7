"""Reporting's dossier subscription through the consumer: messages in hand together are folded
in one transaction with one handler call, to the dossiers and feed rows that one message a
transaction gives — events out of order across the messages, a source's messages counted one by
one in its feed (with its usual gap)."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from services.reporting.adapters.tables import inbox
from services.reporting.bootstrap import Reporting
from services.reporting.subscriptions import SUBSCRIPTIONS
from shared.contracts import DossierEventsAccepted
from shared.messaging.consumer import Consumer, Delivery
from shared.messaging.topology import IncomingMessage
from shared.unit_of_work import UnitOfWork
from tests.integration.reporting.test_calendar_days import MONDAY

pytestmark = pytest.mark.integration
DOSSIERS = next(s for s in SUBSCRIPTIONS if DossierEventsAccepted.routing_key in s.routing_keys)
T0 = datetime(2026, 10, 5, 3, 0, tzinfo=UTC)
GAPS = (0, 60, 60.5, 220.5)  # seconds after T0 each message was accepted


def event(kind: str, d: str, hours: float, **data: Any) -> dict[str, Any]:
    return {
        "type": f"dossier.{kind}",
        "at": (MONDAY + timedelta(hours=hours)).isoformat(),
        "data": {"dossier_id": d, **data},
    }


def received(d: str, unit: str, hours: float = 0) -> dict[str, Any]:
    return event("received", d, hours, unit_code=unit, procedure_code="T.DKT.01", officer_id="cb-1")


def messages(tag: str) -> list[IncomingMessage]:
    d = [f"HS-{tag}-{k}" for k in range(4)]
    per_message = [
        [received(d[0], "P21"), event("supplement_requested", d[3], 26, reason="thiếu tờ khai")],
        [
            event("supplement_received", d[0], 73),
            received(d[1], "P21", 1),
            event("transferred", d[1], 2, to_unit_code="P22"),
        ],
        [event("supplement_requested", d[0], 25, reason="thiếu tờ khai"), received(d[3], "P21", 1)],
        [event("completed", d[0], 100), received(d[2], "P22", 3), event("synced", d[1], 4)],
    ]  # fmt: skip
    return [
        IncomingMessage(
            f"{tag}-{n}",
            DossierEventsAccepted.routing_key,
            orjson.dumps(
                {
                    "events": [
                        {"source": f"tms-{tag}", "event_id": f"{tag}-{n}-{i}", "type": e["type"],
                         "occurred_at": e["at"], "data": e["data"]}
                        for i, e in enumerate(events)
                    ],
                    "accepted_at": (T0 + timedelta(seconds=GAPS[n])).isoformat(),
                }
            ),
        )
        for n, events in enumerate(per_message)
    ]  # fmt: skip


async def state(reporting: Reporting, tag: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Dossiers and feed rows of a tag's messages, the tag taken out; how many transactions wrote the dossiers."""
    async with reporting.sessions() as s:
        rows = (
            await s.execute(
                text("SELECT *, history::text AS h, xmin::text AS tx FROM reporting.dossier WHERE dossier_id LIKE :p"),
                {"p": f"HS-{tag}-%"},
            )
        ).all()
        feeds = (await s.execute(text("SELECT * FROM reporting.feed WHERE source = :s"), {"s": f"tms-{tag}"})).all()
    dossiers = {
        r.dossier_id.replace(tag, "X"): {
            **{k: v for k, v in r._mapping.items() if k not in ("dossier_id", "updated_at", "history", "h", "tx")},
            "history": orjson.loads(r.h.replace(tag, "X")),
        }
        for r in rows
    }
    feed = {r.unit_code: {k: v for k, v in r._mapping.items() if k != "source"} for r in feeds}
    return dossiers, feed, len({r.tx for r in rows})


async def test_messages_in_hand_are_one_fold_to_the_state_of_one_by_one(reporting: Reporting) -> None:
    run = uuid.uuid4().hex[:8]
    one, burst = f"one{run}", f"all{run}"
    consumer = Consumer(uow_factory=reporting.uow, inbox=inbox)
    for m in messages(one):
        assert await consumer.apply(DOSSIERS, m)

    calls: list[int] = []

    async def counted(batch: list[IncomingMessage], uow: UnitOfWork) -> None:
        calls.append(len(batch))
        assert DOSSIERS.batch_handler is not None
        await DOSSIERS.batch_handler(batch, uow)

    deliveries = [Delivery(m, contextvars.copy_context()) for m in messages(burst)]
    await consumer.apply_batch(replace(DOSSIERS, batch_handler=counted), deliveries)
    assert [await w.outcome for w in deliveries] == [True] * 4 and calls == [4]

    one_dossiers, one_feed, _ = await state(reporting, one)
    burst_dossiers, burst_feed, transactions = await state(reporting, burst)
    assert transactions == 1 and len(burst_dossiers) == 4
    assert burst_dossiers == one_dossiers
    assert burst_dossiers["HS-X-0"]["finish_kind"] == "completed"
    assert burst_dossiers["HS-X-1"]["unit_code"] == "P22" and burst_dossiers["HS-X-3"]["paused_at"] is not None
    # Feed rows: each message counted in turn (batches, last times, the usual gap of 60 s, then a
    # half-second burst, then 160 s). One difference, by design: an event that came before its
    # dossier's receipt counts, in a batch holding the receipt too, for the unit the batch gives
    # the dossier; one message a transaction it counted for no unit (HS-…-3's supplement request).
    assert burst_feed["P22"] == one_feed["P22"]
    assert {**burst_feed["P21"], "events": burst_feed["P21"]["events"] - 1} == one_feed["P21"]
    assert (one_feed["P21"]["batches"], one_feed["P21"]["usual_gap_s"]) == (4, pytest.approx(0.8 * 60 + 0.2 * 160))
