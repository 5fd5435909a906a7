"""A unit of work wakes the relay after its commit, from a transaction of its own; a rollback
wakes nothing. Real PostgreSQL: a LISTEN connection hears what the waker sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.contracts import IntegrationEvent
from shared.db import create_engine, driver_connection, service_metadata, session_factory
from shared.messaging.tables import outbox_table
from shared.settings import CommonSettings
from shared.unit_of_work import UnitOfWork, outbox_channel
from shared.wakeup import Waker, notify_statement, wake_after_commit
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_wakeup")
metadata = service_metadata("wake_test")
outbox = outbox_table(metadata)
CHANNEL = outbox_channel("wake_test")


class Ping(IntegrationEvent):
    routing_key = "wake-test.ping.v1"


@pytest_asyncio.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    settings = CommonSettings(database_url=DB)
    await recreate_database(settings.asyncpg_dsn)
    engine = create_engine(settings, application_name="wake-test")
    async with engine.begin() as c:
        await c.exec_driver_sql("CREATE SCHEMA wake_test")
        await c.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def heard(listener: asyncpg.Connection, channel: str) -> list[str]:
    got: list[str] = []
    await listener.add_listener(channel, lambda *args: got.append(args[3]))
    return got


async def until(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_commit_wakes_after_it_and_a_rollback_wakes_nothing(engine: AsyncEngine) -> None:
    waker = Waker(engine)
    sessions = session_factory(engine)
    listener = await asyncpg.connect(CommonSettings(database_url=DB).asyncpg_dsn)
    try:
        relay, other = await heard(listener, CHANNEL), await heard(listener, "wake_test_other")
        with pytest.raises(RuntimeError):
            async with UnitOfWork(sessions, outbox=outbox, exchange="x", waker=waker) as uow:
                uow.publish(Ping())
                wake_after_commit(uow.session, "wake_test_other", "it's 1")
                raise RuntimeError("rolled back")
        async with UnitOfWork(sessions, outbox=outbox, exchange="x", waker=waker) as uow:
            uow.publish(Ping())
            wake_after_commit(uow.session, "wake_test_other", "it's 2")
            raw = await driver_connection(uow.session)
            sent: list[str] = []

            def log(record: Any) -> None:
                sent.append(record.query)

            raw.add_query_logger(log)
        await waker.settle()
        raw.remove_query_logger(log)  # the pooled connection serves the next test
        # Nothing notifies from inside the transaction: its commit takes no cluster-wide NOTIFY lock.
        committed = next(i for i, q in enumerate(sent) if q.strip().upper().startswith("COMMIT"))
        assert any("INSERT INTO wake_test.outbox" in q for q in sent[:committed])
        assert not any("pg_notify" in q for q in sent[:committed])
        await until(lambda: relay and other, "the committed unit of work woke nobody")
        assert relay == [""] and other == ["it's 2"]  # the rolled-back one woke nothing
    finally:
        await listener.close()


async def test_wakes_asked_for_together_are_sent_in_one_round_trip(engine: AsyncEngine) -> None:
    statement = notify_statement({("c", "a'b"), ("c", ""), ("d", "x")})
    assert statement == (
        "BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_notify('c', ''); "
        "SELECT pg_notify('c', 'a''b'); SELECT pg_notify('d', 'x'); COMMIT"
    )
    with pytest.raises(ValueError, match="NUL"):
        notify_statement({("c", "\x00")})
    waker = Waker(engine)
    listener = await asyncpg.connect(CommonSettings(database_url=DB).asyncpg_dsn)
    try:
        got = await heard(listener, "wake_test_burst")
        for n in range(20):  # merged while one is on its way: fewer sends, every payload heard
            waker.wake({("wake_test_burst", str(n))})
        await waker.settle()
        await until(lambda: len(got) == 20, f"heard {len(got)} of 20 wakes")
        assert sorted(got, key=int) == [str(n) for n in range(20)]
    finally:
        await listener.close()
