"""Replay of the raw event log to one named consumer (for recompute and rebuilds)."""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson
from sqlalchemy import insert, select

from services.ingest.adapters.tables import event_log, replay
from shared.contracts import RawEvent, ReplayBatch, ReplayFinished, replay_routing_key
from shared.unit_of_work import UnitOfWork

BATCH = 500


async def replay_log(
    *,
    consumer: str,
    occurred_from: datetime | None,
    occurred_to: datetime | None,
    requested_by: str,
    uow: UnitOfWork,
) -> tuple[str, int, int]:
    """Queue every logged event (of the window) for ``consumer``; returns (id, events, batches)."""
    replay_id = uuid.uuid4().hex
    key = replay_routing_key(consumer)
    query = select(event_log.c.source, event_log.c.event_id, event_log.c.type, event_log.c.body).order_by(
        event_log.c.occurred_at, event_log.c.seq
    )
    if occurred_from is not None:
        query = query.where(event_log.c.occurred_at >= occurred_from)
    if occurred_to is not None:
        query = query.where(event_log.c.occurred_at < occurred_to)
    batch: list[RawEvent] = []
    batches = events = 0

    def flush() -> None:
        nonlocal batch, batches
        message = ReplayBatch(replay_id=replay_id, consumer=consumer, batch_no=batches, events=batch)
        uow.publish_raw(routing_key=key, body=orjson.dumps(message.model_dump(mode="json")))
        batches += 1
        batch = []

    stream = await uow.session.stream(query.execution_options(yield_per=5_000))
    async for row in stream:
        body = row.body
        batch.append(
            RawEvent(
                source=row.source,
                event_id=row.event_id,
                type=row.type,
                occurred_at=body["occurred_at"],
                data=body["data"],
            )
        )
        events += 1
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    finished = ReplayFinished(replay_id=replay_id, consumer=consumer, batches=batches, events=events)
    uow.publish_raw(routing_key=key, body=orjson.dumps(finished.model_dump(mode="json")))
    await uow.session.execute(
        insert(replay).values(
            replay_id=replay_id,
            consumer=consumer,
            period_from=occurred_from,
            period_to=occurred_to,
            events=events,
            messages=batches,
            requested_by=requested_by,
        )
    )
    return replay_id, events, batches
