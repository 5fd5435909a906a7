"""The consumer's batcher, the inbox and the retry budget when the broker or the database fails.

Real PostgreSQL (a scratch database) and RabbitMQ (a prefix of its own); the broker drops a
connection with ``rabbitmqctl close_connection`` (as it does on a network failure or a node
restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.db import create_engine, service_metadata, session_factory
from shared.messaging.consumer import Consumer
from shared.messaging.tables import inbox_table, outbox_table
from shared.messaging.topology import IncomingMessage, Subscription, declare_exchange
from shared.settings import CommonSettings
from shared.unit_of_work import UnitOfWork
from sqi_cli.scratch import delete_broker_objects, recreate_database, scratch_database_url

from .broker import drop_connection, skip_without_rabbitmqctl

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_audit_consumer")
SCHEMA = "audit_consumer"
metadata = service_metadata(SCHEMA)
inbox, outbox = inbox_table(metadata), outbox_table(metadata)
EXCHANGE = "auditc.events"


async def until(done: Callable[[], Awaitable[bool]], within_s: float = 20, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, f"not done in {within_s} s: {what}"
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def env() -> AsyncIterator[dict[str, Any]]:
    settings = CommonSettings(database_url=DB, bus_prefix=f"auditc{os.getpid()}.")
    await recreate_database(settings.asyncpg_dsn)
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    await conn.execute(f"CREATE SCHEMA {SCHEMA}; CREATE TABLE {SCHEMA}.effect (message_id text, body text)")
    await conn.close()
    engine = create_engine(settings, application_name="audit-consumer")
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    queues: list[str] = []
    yield {"settings": settings, "sessions": session_factory(engine), "queues": queues}
    await engine.dispose()
    await delete_broker_objects(settings, queues, [EXCHANGE])


async def effects(settings: CommonSettings) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        return sorted((r[0], r[1]) for r in await conn.fetch(f"SELECT message_id, body FROM {SCHEMA}.effect"))
    finally:
        await conn.close()


async def publish(settings: CommonSettings, routing_key: str, messages: list[tuple[str | None, bytes]]) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await declare_exchange(channel, settings.bus_prefix + EXCHANGE)
        for message_id, body in messages:
            await exchange.publish(
                aio_pika.Message(body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=routing_key,
            )


def make_consumer(sessions: async_sessionmaker[Any], **kw: Any) -> Consumer:
    return Consumer(
        uow_factory=lambda: UnitOfWork(sessions, outbox=outbox, exchange="x"),
        inbox=inbox,
        prefix=kw.pop("prefix"),
        **kw,
    )


# --- 1. A connection drop while a batch is applied --------------------------------------------

release = asyncio.Event()
entered = asyncio.Event()


async def slow_first_batch(messages: list[IncomingMessage], uow: UnitOfWork) -> None:
    if not entered.is_set():
        entered.set()
        await release.wait()  # the first batch is in its transaction when the connection drops
    for m in messages:
        await uow.session.execute(
            text(f"INSERT INTO {SCHEMA}.effect VALUES (:m, :b)"), {"m": m.message_id, "b": m.body.decode()}
        )


DROP_SUB = Subscription(queue="audit-drop", exchange=EXCHANGE, routing_keys=["drop.v1"], batch_handler=slow_first_batch)


async def test_a_connection_drop_during_a_batch_strands_no_delivery(
    env: dict[str, Any],
) -> None:
    """Schedule: m1's batch is in its transaction, m2 and m3 wait in the batcher; the broker drops
    the connection (aiormq cancels every consumer callback of the channel, which cancels their
    ``Delivery.outcome`` futures); m1's transaction commits; the robust connection comes back and
    m1, m2, m3 are redelivered. Every delivery must end acked (in_flight back to 0)."""
    skip_without_rabbitmqctl()
    settings: CommonSettings = env["settings"]
    env["queues"].append(DROP_SUB.queue)
    release.clear()
    entered.clear()
    name = f"audit-drop-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(
        settings.amqp_url, client_properties={"connection_name": name}, reconnect_interval=0.5
    )
    consumer = make_consumer(env["sessions"], prefix=settings.bus_prefix, prefetch=4, batch_prefetch=32)
    try:
        await consumer.start(await connection.channel(), [DROP_SUB])
        await publish(settings, "drop.v1", [("m1", b"1")])
        await asyncio.wait_for(entered.wait(), 20)
        await publish(settings, "drop.v1", [("m2", b"2"), ("m3", b"3")])
        batcher = consumer._batchers[DROP_SUB.queue]

        async def two_waiting() -> bool:
            return len(batcher._waiting) == 2

        await until(two_waiting, what="m2 and m3 waiting behind m1's batch")

        reconnected = asyncio.Event()
        connection.reconnect_callbacks.add(lambda *_: reconnected.set())
        drop_connection(name)

        await asyncio.wait_for(reconnected.wait(), 20)  # aiormq cancelled the channel's callbacks

        async def redelivered() -> bool:  # the three back in hand, behind m1's batch
            return len(batcher._waiting) == 5

        await until(redelivered, what="m1, m2 and m3 redelivered")
        release.set()  # m1's transaction commits after its delivery was cancelled

        async def settled() -> bool:
            return [m for m, _ in await effects(settings)] == ["m1", "m2", "m3"] and consumer.in_flight == 0

        deadline = asyncio.get_running_loop().time() + 15
        while not await settled() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        applied = [m for m, _ in await effects(settings)]
        assert applied == ["m1", "m2", "m3"] and consumer.in_flight == 0, (
            f"after the reconnection: applied {applied}, {consumer.in_flight} redelivered deliveries in hand "
            f"never acked nor rejected, {len(batcher._waiting)} left in the batcher with no drain running"
        )
    finally:
        release.set()
        await consumer.stop(within_s=1)
        await connection.close()


# --- 2. The retry budget spent on a database outage -------------------------------------------


async def keep(message: IncomingMessage, uow: UnitOfWork) -> None:
    await uow.session.execute(
        text(f"INSERT INTO {SCHEMA}.effect VALUES (:m, :b)"), {"m": message.message_id, "b": message.body.decode()}
    )


OUTAGE_SUB = Subscription(
    queue="audit-outage", exchange=EXCHANGE, routing_keys=["outage.v1"], handler=keep,
    max_attempts=3, retry_delay_ms=200,
)  # fmt: skip


async def test_a_database_outage_parks_no_healthy_message(env: dict[str, Any]) -> None:
    """Schedule: PostgreSQL is unreachable (a restart, a failover) while a healthy message is
    delivered; each attempt fails on the connection, is rejected to the retry queue and counted;
    after ``max_attempts`` the message is parked. The database comes back: the message must still
    be applied (by itself, without a person moving it back from the parking queue)."""
    settings: CommonSettings = env["settings"]
    env["queues"].append(OUTAGE_SUB.queue)
    down = CommonSettings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    dead_engine = create_engine(down, application_name="audit-outage")
    dead_sessions = session_factory(dead_engine)
    live_sessions = env["sessions"]
    state = {"down": True, "failed": 0}

    def uow() -> UnitOfWork:
        if state["down"]:
            state["failed"] += 1
            return UnitOfWork(dead_sessions, outbox=outbox, exchange="x")
        return UnitOfWork(live_sessions, outbox=outbox, exchange="x")

    connection = await aio_pika.connect_robust(settings.amqp_url)
    consumer = Consumer(uow_factory=uow, inbox=inbox, prefix=settings.bus_prefix, prefetch=1)
    try:
        await consumer.start(await connection.channel(), [OUTAGE_SUB])
        await publish(settings, "outage.v1", [("healthy", b"ok")])

        async def outage_lasted() -> bool:  # the outage outlasts the retry budget
            return state["failed"] > OUTAGE_SUB.max_attempts

        await until(outage_lasted, what="the attempts during the outage")
        state["down"] = False  # PostgreSQL is back

        deadline = asyncio.get_running_loop().time() + 10
        while not await effects(settings) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        channel = await connection.channel()
        parked = await channel.declare_queue(settings.bus_prefix + OUTAGE_SUB.queue + ".parking", durable=True)
        assert await effects(settings) == [("healthy", "ok")], (
            f"a healthy message was parked by a database outage of {state['failed']} attempts "
            f"(parking queue holds {parked.declaration_result.message_count})"
        )
    finally:
        await consumer.stop(within_s=2)
        await connection.close()
        await dead_engine.dispose()


# --- 3. A transaction PostgreSQL aborted, committed as if it were not -------------------------


async def swallow_a_conflict(message: IncomingMessage, uow: UnitOfWork) -> None:
    await keep(message, uow)
    # "Already there: fine" — without a savepoint the transaction is now aborted.
    with contextlib.suppress(Exception):
        await uow.session.execute(
            text(f"INSERT INTO {SCHEMA}.inbox (consumer, message_id) VALUES ('x', 'x'), ('x', 'x')")
        )


SWALLOW_SUB = Subscription(queue="audit-swallow", exchange=EXCHANGE, routing_keys=["s.v1"], handler=swallow_a_conflict)


async def test_a_message_is_not_acked_when_its_transaction_was_aborted(env: dict[str, Any]) -> None:
    """Schedule: a handler catches a database error (an expected conflict) without a savepoint;
    PostgreSQL has aborted the transaction, and COMMIT answers ROLLBACK without an error (asyncpg and
    SQLAlchemy raise nothing). The inbox row and the effects are gone, yet ``apply`` reports the
    message applied, so the consumer acks it: applied zero times."""
    settings: CommonSettings = env["settings"]
    consumer = make_consumer(env["sessions"], prefix=settings.bus_prefix)
    try:
        applied = await consumer.apply(SWALLOW_SUB, IncomingMessage("lost", "s.v1", b"body"))
    except Exception:
        return  # refused: retried, then parked — never acked unapplied
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        inbox_rows = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.inbox WHERE message_id = 'lost'")
    finally:
        await conn.close()
    assert not applied or (await effects(settings) and inbox_rows), (
        f"apply() returned {applied} (the consumer acks) but the transaction rolled back: "
        f"effects {await effects(settings)}, inbox rows {inbox_rows}"
    )
