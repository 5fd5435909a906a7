"""Every accepted event reaches a consumer exactly once in effect, through crashes.

Real PostgreSQL and RabbitMQ; the ingest outbox relay and the consumer run as processes
that the test kills with SIGKILL at random moments (between commit and publish, between
publish and mark, between commit and ack), then restarts.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.ingest.bootstrap import bootstrap
from shared.contracts import DossierEventsAccepted, RawEvent
from shared.messaging.topology import declare_subscription
from shared.migrations import upgrade
from shared.settings import CommonSettings
from sqi_cli.scratch import delete_broker_objects, recreate_database, scratch_database_url
from tests.integration.bus_consumer import SUBSCRIPTION

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DB = scratch_database_url("sqi_test_bus")
MESSAGES, PER_MESSAGE = 300, 5


@pytest.fixture
def bus_env() -> Iterator[dict[str, str]]:
    env = {**os.environ, "SQI_DATABASE_URL": DB, "SQI_BUS_PREFIX": f"bus{os.getpid()}."}
    settings = CommonSettings(database_url=DB, bus_prefix=env["SQI_BUS_PREFIX"])

    async def prepare() -> None:
        await recreate_database(settings.asyncpg_dsn)
        conn = await asyncpg.connect(settings.asyncpg_dsn)
        await conn.execute(
            "CREATE SCHEMA bus_test; "
            "CREATE TABLE bus_test.inbox (consumer text, message_id text, received_at timestamptz DEFAULT now(), "
            "PRIMARY KEY (consumer, message_id)); "
            "CREATE TABLE bus_test.effect (event_key text PRIMARY KEY, applied int NOT NULL)"
        )
        await conn.close()

    asyncio.run(prepare())
    upgrade(ROOT / "services/ingest/migrations", DB)
    yield env
    asyncio.run(delete_broker_objects(settings, [SUBSCRIPTION.queue], ["ingest.events"]))


async def write_outbox(env: dict[str, str]) -> None:
    """Accepted events as ingest writes them: outbox rows committed with the state change."""
    import aio_pika

    settings = CommonSettings(database_url=DB, bus_prefix=env["SQI_BUS_PREFIX"])
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        await declare_subscription(await connection.channel(), SUBSCRIPTION, prefix=settings.bus_prefix)
    ingest = bootstrap()
    ingest.settings = ingest.settings.model_copy(update={"database_url": DB})
    from shared.db import create_engine, session_factory

    ingest.engine = create_engine(settings, application_name="bus-test")
    ingest.sessions = session_factory(ingest.engine)
    for m in range(MESSAGES):
        async with ingest.uow() as uow:
            uow.publish(
                DossierEventsAccepted(
                    events=[
                        RawEvent(
                            source="s",
                            event_id=f"{m}-{i}",
                            type="dossier.synced",
                            occurred_at="2026-10-01T00:00:00+07:00",
                            data={"dossier_id": f"D{m}"},
                        )
                        for i in range(PER_MESSAGE)
                    ]
                )
            )
    await ingest.dispose()


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


async def effects(dsn: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, coalesce(max(applied), 0) AS most, "
            "coalesce(min(applied), 0) AS least FROM bus_test.effect"
        )
        pending = await conn.fetchval("SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL")
    finally:
        await conn.close()
    return int(row["n"]), int(row["most"]), int(pending)


def test_every_event_applied_exactly_once_through_sigkills(bus_env: dict[str, str]) -> None:
    asyncio.run(write_outbox(bus_env))
    dsn = DB.replace("+asyncpg", "")
    rng = random.Random(7)
    relay = start(["-m", "services.ingest.worker"], bus_env)
    consumer = start(["-m", "tests.integration.bus_consumer", "1"], bus_env)
    try:
        for _ in range(6):
            time.sleep(rng.uniform(0.3, 1.2))
            victim = rng.choice(["relay", "consumer"])
            if victim == "relay":
                kill(relay)
                relay = start(["-m", "services.ingest.worker"], bus_env)
            else:
                kill(consumer)
                consumer = start(["-m", "tests.integration.bus_consumer", "1"], bus_env)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            count, most, pending = asyncio.run(effects(dsn))
            if count == MESSAGES * PER_MESSAGE and pending == 0:
                break
            time.sleep(0.5)
    finally:
        kill(relay)
        kill(consumer)
    count, most, pending = asyncio.run(effects(dsn))
    assert pending == 0
    assert count == MESSAGES * PER_MESSAGE
    assert most == 1, "an event was applied more than once"
