"""A batch handler behind the real broker: a burst of deliveries is applied in a few calls (the
subscription's larger prefetch), in a span linked to every message's consumer span; a poisoned
message is retried alone and then parked, the others applied once.

Real RabbitMQ (a prefix of its own) and PostgreSQL (a scratch database).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import asyncpg
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from shared.db import create_engine, service_metadata, session_factory
from shared.messaging.consumer import Consumer
from shared.messaging.tables import inbox_table, outbox_table
from shared.messaging.topology import IncomingMessage, Subscription
from shared.settings import CommonSettings
from shared.telemetry import configure_telemetry
from shared.unit_of_work import UnitOfWork
from sqi_cli.scratch import delete_broker_objects, recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_batch_deliveries")
metadata = service_metadata("burst_test")
inbox, outbox = inbox_table(metadata), outbox_table(metadata)
BURST = 24
calls: list[list[IncomingMessage]] = []


async def apply_all(messages: list[IncomingMessage], uow: UnitOfWork) -> None:
    calls.append(messages)
    if any(m.body == b"poison" for m in messages):
        raise ValueError("a message no handler can apply")
    for m in messages:
        await uow.session.execute(text("INSERT INTO burst_test.effect VALUES (:m)"), {"m": m.message_id})


SUB = Subscription(
    queue="burst-test", exchange="burst.events", routing_keys=["burst.v1"], batch_handler=apply_all,
    max_attempts=2, retry_delay_ms=200,
)  # fmt: skip


@pytest_asyncio.fixture
async def settings() -> AsyncIterator[CommonSettings]:
    settings = CommonSettings(database_url=DB, bus_prefix=f"burst{os.getpid()}.")
    await recreate_database(settings.asyncpg_dsn)
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    await conn.execute("CREATE SCHEMA burst_test; CREATE TABLE burst_test.effect (message_id text PRIMARY KEY)")
    await conn.close()
    yield settings
    await delete_broker_objects(settings, [SUB.queue], [SUB.exchange])


async def applied(settings: CommonSettings) -> list[str]:
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        return sorted(r[0] for r in await conn.fetch("SELECT message_id FROM burst_test.effect"))
    finally:
        await conn.close()


def make_consumer(settings: CommonSettings, sessions: Any) -> Consumer:
    return Consumer(
        uow_factory=lambda: UnitOfWork(sessions, outbox=outbox, exchange="x"),
        inbox=inbox,
        prefix=settings.bus_prefix,
        prefetch=4,
        batch_prefetch=32,
    )


async def publish(channel: Any, settings: CommonSettings, messages: list[tuple[str, bytes]]) -> None:
    exchange = await channel.get_exchange(settings.bus_prefix + SUB.exchange)
    for message_id, body in messages:
        await exchange.publish(aio_pika.Message(body, message_id=message_id), routing_key="burst.v1")


async def until(done: Callable[[], Awaitable[bool]], within_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, "not done in time"
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_a_burst_is_applied_in_a_few_calls_and_a_poisoned_message_is_parked(settings: CommonSettings) -> None:
    exporter = InMemorySpanExporter()
    configure_telemetry("burst-test", exporter=exporter, logs=False)
    calls.clear()
    engine = create_engine(settings, application_name="burst-test")
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    connection = await aio_pika.connect_robust(settings.amqp_url)
    ids = [f"m{i:02d}" for i in range(BURST)]
    try:
        channel = await connection.channel()
        declared = make_consumer(settings, sessions)
        await declared.start(channel, [SUB])
        await declared.stop(within_s=5)  # queue and bindings declared; the burst waits in the queue
        await publish(channel, settings, [(m, b"{}") for m in ids] + [("m01", b"{}")])  # m01 twice

        consumer = make_consumer(settings, sessions)
        await consumer.start(await connection.channel(), [SUB])
        await until(lambda: applied_all(settings, ids))
        burst_calls = list(calls)

        await publish(channel, settings, [("p1", b"{}"), ("p2", b"poison"), ("p3", b"{}")])
        parking = await channel.declare_queue(settings.bus_prefix + SUB.queue + ".parking", durable=True)
        parked: list[Any] = []

        async def poison_parked() -> bool:
            got = await parking.get(fail=False, no_ack=True)
            parked.extend([got] if got is not None else [])
            return bool(parked)

        await until(poison_parked)
        await consumer.stop(within_s=5)
    finally:
        await connection.close()
        await engine.dispose()

    # All in hand together (a prefetch of 4 would take ≥ 6 transactions); the first delivery
    # may be applied alone (the batcher starts at once), the redelivered m01 is a duplicate.
    assert len(burst_calls) <= 3 and sorted(m.message_id for c in burst_calls for m in c) == ids, burst_calls
    # The poisoned message was retried alone (max_attempts 2), then parked; the others applied once.
    assert parked[0].message_id == "p2"
    assert [[m.message_id for m in c] for c in calls[len(burst_calls) :] if any(m.message_id == "p2" for m in c)][
        -2:
    ] == [["p2"], ["p2"]]
    assert await applied(settings) == sorted([*ids, "p1", "p3"])

    # A batch's span links to each of its messages' consumer spans, whose trace the message carries.
    spans = exporter.get_finished_spans()
    consumer_spans = {s.context.span_id for s in spans if s.kind.name == "CONSUMER" and not s.links}
    batch_spans = [s for s in spans if s.name == f"{SUB.queue} process"]
    assert batch_spans
    for batch_span in batch_spans:
        assert batch_span.parent is None and batch_span.links
        assert all(link.context.span_id in consumer_spans for link in batch_span.links)
    traceparents = [m.traceparent for c in burst_calls for m in c]
    assert all(tp and int(tp.split("-")[2], 16) in consumer_spans for tp in traceparents)


async def applied_all(settings: CommonSettings, ids: list[str]) -> bool:
    return set(ids) <= set(await applied(settings))
