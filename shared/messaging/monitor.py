"""Periodic gauges of a worker's messaging health: outbox backlog, consumer lag, parked messages.

Polled rather than computed on each event so the hot paths pay nothing: every ``every_s`` the
worker counts its service's unpublished outbox rows (and the age of the oldest), and asks the
broker, with a passive queue declare (which never creates a queue), how many messages are ready
in each of its consumer queues and in their parking queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import aio_pika
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging.topology import Subscription
from shared.metrics import CONSUMER_LAG, OUTBOX_OLDEST_AGE, OUTBOX_PENDING, PARKED_MESSAGES

log = logging.getLogger(__name__)


async def observe_outbox(engine: AsyncEngine, outbox: Table, *, service: str) -> tuple[int, float]:
    """Set the outbox gauges of ``service``; returns (pending rows, age of the oldest in seconds)."""
    name = f"{outbox.schema}.{outbox.name}" if outbox.schema else outbox.name
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    f"SELECT count(*) AS pending, "
                    f"coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest "
                    f"FROM {name} WHERE published_at IS NULL"
                )
            )
        ).one()
    pending, oldest = int(row.pending), float(row.oldest)
    OUTBOX_PENDING.labels(service).set(pending)
    OUTBOX_OLDEST_AGE.labels(service).set(oldest)
    return pending, oldest


async def observe_queues(
    channel: aio_pika.abc.AbstractChannel, subscriptions: Sequence[Subscription], *, prefix: str, service: str
) -> None:
    """Set the consumer-lag and parking gauges from the broker's ready-message counts."""
    # The underlying channel: aio-pika's robust channel answers a passive declare of a queue it
    # already knows from its cache, with the count of the first declare.
    raw = await channel.get_underlay_channel()
    for sub in subscriptions:
        for queue, gauge in ((sub.queue, CONSUMER_LAG), (f"{sub.queue}.parking", PARKED_MESSAGES)):
            declared = await raw.queue_declare(prefix + queue, passive=True)
            gauge.labels(service, queue).set(declared.message_count or 0)


async def run_monitor(
    *,
    engine: AsyncEngine,
    outbox: Table,
    connection: aio_pika.abc.AbstractRobustConnection,
    subscriptions: Sequence[Subscription],
    prefix: str,
    service: str,
    stop: asyncio.Event,
    every_s: float = 10.0,
) -> None:
    channel: aio_pika.abc.AbstractChannel | None = None
    while not stop.is_set():
        try:
            await observe_outbox(engine, outbox, service=service)
            if subscriptions:
                # A passive declare of a missing queue closes the channel: open a fresh one then.
                if channel is None or channel.is_closed:
                    channel = await connection.channel()
                await observe_queues(channel, subscriptions, prefix=prefix, service=service)
        except Exception as exc:  # the gauges keep their last value; the next poll tries again
            log.warning("messaging monitor: poll failed", extra={"error": repr(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    if channel is not None and not channel.is_closed:
        await channel.close()
