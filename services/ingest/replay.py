"""Replay of the raw event log to one named consumer (for recompute and rebuilds).

A request only records the job (``pending``); the ingest worker runs it: it streams the log
in ``(occurred_at, seq)`` order, in chunks each written to the outbox in its own short
transaction together with the job's progress, then announces the totals with
:class:`ReplayFinished`. So a replay of millions of events never holds one long transaction
or an HTTP request open, and a job whose worker died (no heartbeat for ``STALE``) is taken
up by another and resumes after its last committed chunk, without repeating a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, literal, or_, select, tuple_, update

from services.ingest.adapters.tables import event_log, replay
from services.ingest.domain.validation import parse_datetime, readable_times
from shared.contracts import ReplayFinished, replay_routing_key
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

BATCH = 500  # events per message
CHUNK_BATCHES = 40  # messages per transaction (20,000 events)
# Bytes of events per message, at most (one event larger than this goes alone). The envelope
# allows extra fields, so one event can be as large as a request (10 MB): 500 of them made a
# message of gigabytes, which the broker refuses (RabbitMQ 4's default max_message_size is
# 16 MiB, 3.x's 128 MiB) — a publish retried for ever, the replay never finished. A live
# message carries one request's events, so it is at most 10 MB.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
STALE = timedelta(minutes=5)


async def request_replay(
    *, consumer: str, occurred_from: datetime | None, occurred_to: datetime | None, requested_by: str, uow: UnitOfWork
) -> str:
    replay_id = uuid.uuid4().hex
    await uow.session.execute(
        insert(replay).values(
            replay_id=replay_id,
            consumer=consumer,
            period_from=occurred_from,
            period_to=occurred_to,
            requested_by=requested_by,
        )
    )
    return replay_id


async def replay_status(replay_id: str, *, uow: UnitOfWork) -> dict[str, Any] | None:
    row = (await uow.session.execute(select(replay).where(replay.c.replay_id == replay_id))).mappings().first()
    return dict(row) if row else None


def _event_json(r: Any) -> bytes:
    # Written directly: the body is the ReplayBatch contract, events as the source sent them,
    # but for the times, written as the live stream wrote them (handlers._store): RFC 3339 allows
    # what Python's fromisoformat refuses (a lower-case "z"), and a recomputation must read the
    # very instants the live path read.
    return orjson.dumps(
        {
            "source": r.source,
            "event_id": r.event_id,
            "type": r.type,
            "occurred_at": parse_datetime(r.body["occurred_at"]) or r.occurred_at,
            "data": readable_times(r.body["data"]),
        }
    )


def batch_bodies(replay_id: str, consumer: str, first_no: int, rows: list[Any]) -> list[bytes]:
    """``rows`` as ReplayBatch bodies numbered from ``first_no``, in order: at most ``BATCH``
    events and ``MAX_MESSAGE_BYTES`` of them a message (a larger event alone)."""
    bodies: list[bytes] = []
    events: list[bytes] = []
    size = 0

    def flush() -> None:
        head = orjson.dumps({"replay_id": replay_id, "consumer": consumer, "batch_no": first_no + len(bodies)})
        bodies.append(head[:-1] + b',"events":[' + b",".join(events) + b"]}")

    for r in rows:
        event = _event_json(r)
        if events and (len(events) == BATCH or size + len(event) > MAX_MESSAGE_BYTES):
            flush()
            events, size = [], 0
        events.append(event)
        size += len(event) + 1
    if events:
        flush()
    return bodies


async def run_replay(job: Any, uow_factory: Callable[[], UnitOfWork]) -> None:
    """Stream one replay into the outbox, chunk by chunk, then announce its totals."""
    key = replay_routing_key(job.consumer)
    window = []
    if job.period_from is not None:
        window.append(event_log.c.occurred_at >= job.period_from)
    if job.period_to is not None:
        window.append(event_log.c.occurred_at < job.period_to)
    after: tuple[datetime, int] | None = None
    if job.cursor_occurred_at is not None:
        after = (job.cursor_occurred_at, job.cursor_seq)
    batches, events = job.messages, job.events
    while True:
        query = select(
            event_log.c.occurred_at,
            event_log.c.seq,
            event_log.c.source,
            event_log.c.event_id,
            event_log.c.type,
            event_log.c.body,
        ).where(and_(True, *window))
        if after is not None:
            # Keyset pagination: stable and index-backed however long the log.
            query = query.where(
                tuple_(event_log.c.occurred_at, event_log.c.seq) > tuple_(literal(after[0]), literal(after[1]))
            )
        query = query.order_by(event_log.c.occurred_at, event_log.c.seq).limit(BATCH * CHUNK_BATCHES)
        async with uow_factory() as uow:
            rows = (await uow.session.execute(query)).all()
            for body in batch_bodies(job.replay_id, job.consumer, batches, list(rows)):
                uow.publish_raw(routing_key=key, body=body)
                batches += 1
            events += len(rows)
            if rows:
                after = (rows[-1].occurred_at, rows[-1].seq)
            await uow.session.execute(
                update(replay)
                .where(replay.c.replay_id == job.replay_id)
                .values(
                    events=events,
                    messages=batches,
                    cursor_occurred_at=after[0] if after else None,
                    cursor_seq=after[1] if after else None,
                    heartbeat_at=func.now(),
                )
            )
        if len(rows) < BATCH * CHUNK_BATCHES:
            break
    async with uow_factory() as uow:
        finished = ReplayFinished(replay_id=job.replay_id, consumer=job.consumer, batches=batches, events=events)
        uow.publish_raw(routing_key=key, body=orjson.dumps(finished.model_dump(mode="json")))
        await uow.session.execute(
            update(replay).where(replay.c.replay_id == job.replay_id).values(status="done", finished_at=func.now())
        )


async def claim_replay(uow: UnitOfWork) -> Any | None:
    """Take the oldest pending replay, or a running one whose worker stopped beating."""
    row = (
        await uow.session.execute(
            select(replay)
            .where(
                or_(
                    replay.c.status == "pending",
                    and_(replay.c.status == "running", replay.c.heartbeat_at < func.now() - STALE),
                )
            )
            .order_by(replay.c.requested_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).first()
    if row is not None:
        await uow.session.execute(
            update(replay).where(replay.c.replay_id == row.replay_id).values(status="running", heartbeat_at=func.now())
        )
    return row


async def run_replays(uow_factory: Callable[[], UnitOfWork], stop: asyncio.Event, *, poll_s: float = 1.0) -> None:
    """The worker's replay loop."""
    while not stop.is_set():
        async with uow_factory() as uow:
            job = await claim_replay(uow)
        if job is not None:
            try:
                await run_replay(job, uow_factory)
                log.info("replay done", extra={"replay_id": job.replay_id, "consumer": job.consumer})
            except Exception as exc:
                log.exception("replay failed", extra={"replay_id": job.replay_id})
                async with uow_factory() as uow:
                    await uow.session.execute(
                        update(replay)
                        .where(replay.c.replay_id == job.replay_id)
                        .values(status="failed", error=repr(exc)[:1000], finished_at=func.now())
                    )
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)
