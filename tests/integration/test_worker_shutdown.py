"""SIGTERM under a steady stream: the worker finishes what it holds, flushes its outbox, loses nothing.

Real PostgreSQL and RabbitMQ. A worker process (this module run with ``python -m``) consumes a
steady stream of messages with a deliberately slow handler, so that deliveries are always in
hand, and writes one outbox row per message. The test sends SIGTERM mid-stream and checks that
- the process exits by itself, cleanly, well within the grace period;
- a delivery started before the signal was completed after it (in-flight work is finished,
  not cut), and every delivery started was completed;
- the outbox is empty when the process is gone (flushed);
- after a restart every event is applied exactly once (inbox dedupe, nothing lost or doubled).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import asyncpg
import orjson
import pytest
from sqlalchemy import text

from shared import event_loop
from shared.db import create_engine, service_metadata, session_factory
from shared.messaging.tables import inbox_table, outbox_table
from shared.messaging.topology import IncomingMessage, Subscription, declare_exchange, declare_subscription
from shared.settings import CommonSettings
from shared.unit_of_work import ServiceDatabase, UnitOfWork
from shared.worker import WorkerParts, run_worker
from sqi_cli.scratch import delete_broker_objects, recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DB = scratch_database_url("sqi_test_shutdown")
SCHEMA = "shutdown_test"
MESSAGES, PER_MESSAGE = 240, 3
GRACE_S = 10.0
HANDLER_S = 0.15

metadata = service_metadata(SCHEMA)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


class ShutdownTestDatabase(ServiceDatabase):
    OUTBOX = outbox
    EXCHANGE = "shutdown-test.done"


async def slow_handler(message: IncomingMessage, uow: UnitOfWork) -> None:
    """Mark the start outside the transaction, work a while, then apply and publish inside it."""
    engine = uow.session.bind
    async with engine.connect() as conn:  # its own autocommit transaction: survives a rollback
        await conn.execute(text(f"INSERT INTO {SCHEMA}.started (message_id) VALUES (:m)"), {"m": message.message_id})
        await conn.commit()
    await asyncio.sleep(HANDLER_S)
    for key in orjson.loads(message.body)["keys"]:
        await uow.session.execute(
            text(
                f"INSERT INTO {SCHEMA}.effect (event_key, applied) VALUES (:k, 1) "
                f"ON CONFLICT (event_key) DO UPDATE SET applied = {SCHEMA}.effect.applied + 1"
            ),
            {"k": key},
        )
    uow.publish_raw(routing_key="shutdown-test.done.v1", body=message.body)


SUBSCRIPTION = Subscription(
    queue="shutdown-test.work",
    exchange="shutdown-test.in",
    routing_keys=["shutdown-test.work.v1"],
    handler=slow_handler,
    retry_delay_ms=200,
)


def main() -> None:
    """The worker process under test (``python -m tests.integration.test_worker_shutdown``)."""
    settings = CommonSettings(consumer_prefetch=4)
    engine = create_engine(settings, application_name="shutdown-test-worker")
    parts = WorkerParts(
        settings=settings,
        database=ShutdownTestDatabase(engine, session_factory(engine)),
        inbox=inbox,
        subscriptions=[SUBSCRIPTION],
    )
    event_loop.run(run_worker(parts))


# ---------------------------------------------------------------------------- the test


@pytest.fixture
def worker_env() -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "SQI_DATABASE_URL": DB,
        "SQI_BUS_PREFIX": f"shutdown{os.getpid()}.",
        "SQI_WORKER_SHUTDOWN_GRACE_S": str(GRACE_S),
    }
    settings = CommonSettings(database_url=DB, bus_prefix=env["SQI_BUS_PREFIX"])

    async def prepare() -> None:
        await recreate_database(settings.asyncpg_dsn)
        engine = create_engine(settings, application_name="shutdown-test")
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                text(f"CREATE TABLE {SCHEMA}.started (message_id text, at timestamptz DEFAULT clock_timestamp())")
            )
            await conn.execute(
                text(
                    f"CREATE TABLE {SCHEMA}.effect (event_key text PRIMARY KEY, applied int NOT NULL, "
                    "at timestamptz NOT NULL DEFAULT clock_timestamp())"
                )
            )
        await engine.dispose()
        connection = await aio_pika.connect(settings.amqp_url)
        async with connection:
            await declare_subscription(await connection.channel(), SUBSCRIPTION, prefix=settings.bus_prefix)

    asyncio.run(prepare())
    yield env
    asyncio.run(delete_broker_objects(settings, [SUBSCRIPTION.queue], ["shutdown-test.in", "shutdown-test.done"]))


def stream(settings: CommonSettings, done: threading.Event) -> None:
    """A steady stream: one message every 20 ms, confirmed by the broker."""

    async def publish() -> None:
        connection = await aio_pika.connect(settings.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await declare_exchange(channel, settings.bus_prefix + SUBSCRIPTION.exchange)
            for m in range(MESSAGES):
                body = orjson.dumps({"keys": [f"{m}-{i}" for i in range(PER_MESSAGE)]})
                persistent = aio_pika.DeliveryMode.PERSISTENT
                message = aio_pika.Message(body=body, message_id=f"m{m}", delivery_mode=persistent)
                await exchange.publish(message, routing_key="shutdown-test.work.v1")
                await asyncio.sleep(0.02)
        done.set()

    asyncio.run(publish())


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_worker_shutdown"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


def wait_for(dsn: str, query: str, predicate, seconds: float, what: str, every_s: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        rows = asyncio.run(fetch(dsn, query))
        if predicate(rows):
            return rows
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {rows[:3]}"
        time.sleep(every_s)


# Deliveries whose handler started (its own committed row) but whose transaction (with the inbox
# row) has not committed: in the handler right now, or cut and rolled back.
IN_HAND = (
    f"SELECT s.message_id FROM {SCHEMA}.started s LEFT JOIN {SCHEMA}.inbox i "
    "ON i.message_id = s.message_id WHERE i.message_id IS NULL"
)


def test_sigterm_finishes_in_flight_work_flushes_the_outbox_and_loses_nothing(worker_env: dict[str, str]) -> None:
    dsn = DB.replace("+asyncpg", "")
    settings = CommonSettings(database_url=DB, bus_prefix=worker_env["SQI_BUS_PREFIX"])
    done = threading.Event()
    producer = threading.Thread(target=stream, args=(settings, done), daemon=True)
    worker = start_worker(worker_env)
    try:
        producer.start()
        wait_for(dsn, f"SELECT count(*) AS n FROM {SCHEMA}.effect", lambda r: r[0]["n"] >= 60, 60, "first effects")
        # Signal while deliveries are in the handler: started, their transaction not committed yet.
        in_hand = wait_for(dsn, IN_HAND, bool, 30, "a delivery in the handler", every_s=0.01)
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=GRACE_S + 20)
        stopped_in = time.monotonic() - sent
        assert worker.returncode == 0, stderr.decode()[-3000:]
        assert stopped_in < GRACE_S + 5, f"the worker took {stopped_in:.1f} s to stop"

        # In-flight work was finished, not cut: everything started has committed its effects
        # (the inbox row is in the handler's transaction), the deliveries in hand at the signal too.
        unfinished = asyncio.run(fetch(dsn, IN_HAND))
        assert unfinished == [], f"deliveries started but not completed: {unfinished[:5]}"
        assert in_hand, "no delivery was in the handler at SIGTERM: the test would prove nothing"
        # The outbox was flushed before the process ended.
        (pending,) = asyncio.run(fetch(dsn, f"SELECT count(*) AS n FROM {SCHEMA}.outbox WHERE published_at IS NULL"))
        assert pending["n"] == 0, f"{pending['n']} outbox rows left unpublished"

        worker = start_worker(worker_env)
        assert done.wait(60), "the stream did not finish"
        wait_for(
            dsn,
            f"SELECT count(*) AS n FROM {SCHEMA}.effect",
            lambda r: r[0]["n"] == MESSAGES * PER_MESSAGE,
            90,
            "every event applied",
        )
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(GRACE_S + 20)
        producer.join(5)
    (summary,) = asyncio.run(
        fetch(dsn, f"SELECT count(*) AS n, max(applied) AS most FROM {SCHEMA}.effect"),
    )
    assert summary["n"] == MESSAGES * PER_MESSAGE
    assert summary["most"] == 1, "an event was applied twice"
    (inbox_rows,) = asyncio.run(fetch(dsn, f"SELECT count(*) AS n FROM {SCHEMA}.inbox"))
    assert inbox_rows["n"] == MESSAGES


if __name__ == "__main__":
    main()
