"""A running worker's ``/metrics`` shows the messaging health metrics with real values.

Real PostgreSQL and RabbitMQ. A worker process (this module run with ``python -m``) consumes
messages of which some always fail: the good ones are consumed, the bad ones are retried once
and then parked. Its outbox holds one row to publish and two held back by a later
``next_attempt_at`` (as after failed publishes): a backlog that stays visible. The test reads
the worker's ``/metrics`` over HTTP, as Prometheus does.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import httpx
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
from sqi_cli.scratch import delete_broker_objects, free_port_block, recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DB = scratch_database_url("sqi_test_metrics")
SCHEMA = "metrics_test"
QUEUE = "metrics-test.work"

metadata = service_metadata(SCHEMA)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


class MetricsTestDatabase(ServiceDatabase):
    OUTBOX = outbox
    EXCHANGE = "metrics-test.out"


async def sometimes_failing(message: IncomingMessage, uow: UnitOfWork) -> None:
    if orjson.loads(message.body)["fail"]:
        raise ValueError("this message always fails")


SUBSCRIPTION = Subscription(
    queue=QUEUE,
    exchange="metrics-test.in",
    routing_keys=["metrics-test.work.v1"],
    handler=sometimes_failing,
    max_attempts=2,
    retry_delay_ms=200,
)


def main() -> None:
    settings = CommonSettings()
    engine = create_engine(settings, application_name="metrics-test-worker")
    parts = WorkerParts(
        settings=settings,
        database=MetricsTestDatabase(engine, session_factory(engine)),
        inbox=inbox,
        subscriptions=[SUBSCRIPTION],
    )
    event_loop.run(run_worker(parts))


# ---------------------------------------------------------------------------- the test

# Metric name -> the sample (labels in the exposition's alphabetical order) and a check of its value.
EXPECTED = {
    "sqi_messages_consumed_total": (f'queue="{QUEUE}",service="{SCHEMA}"', lambda v: v >= 3),
    "sqi_messages_retried_total": (f'queue="{QUEUE}",service="{SCHEMA}"', lambda v: v >= 2),
    "sqi_messages_parked_total": (f'queue="{QUEUE}",service="{SCHEMA}"', lambda v: v >= 2),
    "sqi_parked_messages": (f'queue="{QUEUE}.parking",service="{SCHEMA}"', lambda v: v >= 2),
    "sqi_consumer_lag_messages": (f'queue="{QUEUE}",service="{SCHEMA}"', lambda v: v >= 0),
    "sqi_outbox_pending_rows": (f'service="{SCHEMA}"', lambda v: v == 2),
    "sqi_outbox_oldest_age_seconds": (f'service="{SCHEMA}"', lambda v: v >= 1),
    "sqi_outbox_published_total": (f'service="{SCHEMA}"', lambda v: v == 1),
}


@pytest.fixture
def worker_env() -> Iterator[dict[str, str]]:
    port = free_port_block(1, start=19_400)
    env = {
        **os.environ,
        "SQI_DATABASE_URL": DB,
        "SQI_BUS_PREFIX": f"metrics{os.getpid()}.",
        "SQI_WORKER_HTTP_PORT": str(port),
        "SQI_WORKER_MONITOR_INTERVAL_S": "0.5",
    }
    settings = CommonSettings(database_url=DB, bus_prefix=env["SQI_BUS_PREFIX"])

    async def prepare() -> None:
        await recreate_database(settings.asyncpg_dsn)
        engine = create_engine(settings, application_name="metrics-test")
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            await conn.run_sync(metadata.create_all)
            # One row to publish now; two the relay must not publish yet (a retry an hour ahead): a backlog.
            for due in ("now()", "now() + interval '1 hour'", "now() + interval '1 hour'"):
                await conn.execute(
                    text(
                        f"INSERT INTO {SCHEMA}.outbox (id, exchange, routing_key, body, created_at, next_attempt_at) "
                        f"VALUES (:id, 'metrics-test.out', 'x.v1', '\\x7b7d', now() - interval '5 seconds', {due})"
                    ),
                    {"id": uuid.uuid4()},
                )
        await engine.dispose()
        connection = await aio_pika.connect(settings.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await declare_subscription(channel, SUBSCRIPTION, prefix=settings.bus_prefix)
            exchange = await declare_exchange(channel, settings.bus_prefix + SUBSCRIPTION.exchange)
            for n in range(5):
                body = orjson.dumps({"fail": n >= 3})
                await exchange.publish(aio_pika.Message(body=body, message_id=f"m{n}"), "metrics-test.work.v1")

    asyncio.run(prepare())
    yield env
    asyncio.run(delete_broker_objects(settings, [QUEUE], ["metrics-test.in", "metrics-test.out"]))


def sample(exposition: str, name: str, labels: str) -> float | None:
    match = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", exposition, re.M)
    return float(match.group(1)) if match else None


def test_a_running_worker_shows_its_messaging_metrics(worker_env: dict[str, str]) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_metrics_worker"],
        cwd=ROOT,
        env=worker_env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{worker_env['SQI_WORKER_HTTP_PORT']}/metrics"
    deadline = time.monotonic() + 60
    missing: dict[str, float | None] = dict.fromkeys(EXPECTED)
    exposition = ""
    try:
        while missing and time.monotonic() < deadline:
            try:
                exposition = httpx.get(url, timeout=2).text
            except httpx.TransportError:
                assert worker.poll() is None, worker.communicate()[1].decode()[-3000:]
                time.sleep(0.2)
                continue
            for name, (labels, ok) in EXPECTED.items():
                value = sample(exposition, name, labels)
                if value is not None and ok(value):
                    missing.pop(name, None)
                else:
                    missing[name] = value
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert not missing, f"metrics missing or wrong on /metrics (last values {missing}):\n{exposition[-3000:]}"
    assert worker.returncode == 0


if __name__ == "__main__":
    main()
