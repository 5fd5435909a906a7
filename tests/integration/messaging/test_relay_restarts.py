"""The outbox relay after the supervisor restarted its run, and across a dropped broker connection.

Schedule: the relay publishes a row (its exchange object is cached in ``OutboxRelay._exchanges``,
bound to the channel of that ``run``); a database error ends ``run`` (PostgreSQL restarting, a
terminated backend), whose ``finally`` closes that channel; ``supervise`` starts ``run`` again on
the same relay object with a fresh channel. Every later publish goes through the cached exchange
of the closed channel.

Real PostgreSQL (a scratch database) and RabbitMQ (a prefix of its own).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable

import aio_pika
import asyncpg
import pytest

from shared.db import create_engine, service_metadata, session_factory
from shared.messaging.relay import OutboxRelay
from shared.messaging.tables import outbox_table
from shared.messaging.topology import declare_exchange
from shared.settings import CommonSettings
from shared.unit_of_work import UnitOfWork
from shared.worker import supervise
from sqi_cli.scratch import recreate_database, scratch_database_url

from .broker import drop_connection, skip_without_rabbitmqctl

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_audit_relay")
SCHEMA = "audit_relay"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
APP = "audit-relay"


async def until(done: Callable[[], Awaitable[bool]], within_s: float = 20, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, f"not done in {within_s} s: {what}"
        await asyncio.sleep(0.05)


async def test_relay_publishes_again_after_a_database_error_restarted_its_run() -> None:
    settings = CommonSettings(database_url=DB, bus_prefix=f"auditrelay{os.getpid()}.")
    dsn = settings.asyncpg_dsn
    await recreate_database(dsn)
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE SCHEMA {SCHEMA}")
    engine = create_engine(settings, application_name=APP)
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel()
    exchange = await declare_exchange(channel, settings.bus_prefix + "audit.events")
    queue = await channel.declare_queue(settings.bus_prefix + "audit-relay", durable=True)
    await queue.bind(exchange, routing_key="audit.v1")
    relay = OutboxRelay(
        engine=engine,
        outbox=outbox,
        connection=connection,
        listen_dsn=settings.listen_dsn,
        prefix=settings.bus_prefix,
        idle_poll_s=0.1,
    )
    stop = asyncio.Event()
    runs = 0

    async def run() -> None:
        nonlocal runs
        runs += 1
        await relay.run(stop)

    task = asyncio.create_task(supervise("relay", run, stop=stop, service="audit", first_backoff_s=0.1))

    async def write(n: int) -> None:
        async with UnitOfWork(sessions, outbox=outbox, exchange="audit.events") as uow:
            uow.publish_raw(routing_key="audit.v1", body=f'{{"n": {n}}}'.encode())

    async def pending() -> list[asyncpg.Record]:
        return await admin.fetch(f"SELECT body, attempts, last_error FROM {SCHEMA}.outbox WHERE published_at IS NULL")

    async def none_pending() -> bool:
        return not await pending()

    try:
        await write(1)
        await until(none_pending, what="the first row published")

        # A database error inside the relay's transaction: its claim waits behind a table lock,
        # and its backend is terminated there (what a PostgreSQL restart does to it).
        locker = await asyncpg.connect(dsn)
        lock = locker.transaction()
        await lock.start()
        await locker.execute(f"LOCK TABLE {SCHEMA}.outbox IN ACCESS EXCLUSIVE MODE")

        async def relay_waits_on_the_lock() -> bool:
            return bool(
                await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                    APP,
                )
            )

        await until(relay_waits_on_the_lock, what="the relay's claim waiting on the lock")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = $1 AND wait_event_type = 'Lock'",
            APP,
        )
        await lock.rollback()
        await locker.close()

        async def restarted() -> bool:
            return runs >= 2

        await until(restarted, what="the supervisor restarting the relay's run")
        await write(2)
        deadline = asyncio.get_running_loop().time() + 15
        while await pending() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        left = await pending()
        assert not left, (
            f"row written after the relay's restart never published: attempts={left[0]['attempts']} "
            f"last_error={left[0]['last_error']}"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await channel.queue_delete(settings.bus_prefix + "audit-relay")
        await channel.exchange_delete(settings.bus_prefix + "audit.events")
        await connection.close()
        await admin.close()
        await engine.dispose()


async def test_relay_loses_nothing_when_the_broker_drops_its_connection() -> None:
    """Schedule: rows are written while the broker drops the relay's connection (publishes in
    flight fail or lose their confirms); the robust connection comes back. Every row must reach
    the queue at least once (duplicates are the consumers' inbox's business) and be marked."""
    skip_without_rabbitmqctl()
    settings = CommonSettings(database_url=DB, bus_prefix=f"auditrelay{os.getpid()}.")
    await recreate_database(settings.asyncpg_dsn)
    admin = await asyncpg.connect(settings.asyncpg_dsn)
    await admin.execute(f"CREATE SCHEMA {SCHEMA}")
    engine = create_engine(settings, application_name=APP)
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    name = f"audit-relay-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(
        settings.amqp_url, client_properties={"connection_name": name}, reconnect_interval=0.5
    )
    reader = await aio_pika.connect(settings.amqp_url)
    channel = await reader.channel()
    exchange = await declare_exchange(channel, settings.bus_prefix + "audit.events")
    queue = await channel.declare_queue(settings.bus_prefix + "audit-relay-drop", durable=True)
    await queue.bind(exchange, routing_key="audit.v1")
    relay = OutboxRelay(
        engine=engine, outbox=outbox, connection=connection, listen_dsn=settings.listen_dsn,
        prefix=settings.bus_prefix, idle_poll_s=0.1,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(
        supervise("relay", lambda: relay.run(stop), stop=stop, service="audit", first_backoff_s=0.1)
    )
    received: set[bytes] = set()
    total = 400

    async def write(start: int, count: int) -> None:
        async with UnitOfWork(sessions, outbox=outbox, exchange="audit.events") as uow:
            for n in range(start, start + count):
                uow.publish_raw(routing_key="audit.v1", body=str(n).encode())

    async def all_through() -> bool:
        while (got := await queue.get(fail=False, no_ack=True)) is not None:
            received.add(got.body)
        left = await admin.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE published_at IS NULL")
        return left == 0 and len(received) == total

    try:
        await write(0, 200)
        drop_connection(name)  # while the first rows are being published
        await write(200, 200)
        await until(all_through, within_s=60, what=f"every row through ({len(received)} of {total} received)")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await channel.queue_delete(settings.bus_prefix + "audit-relay-drop")
        await channel.exchange_delete(settings.bus_prefix + "audit.events")
        await reader.close()
        await connection.close()
        await admin.close()
        await engine.dispose()
