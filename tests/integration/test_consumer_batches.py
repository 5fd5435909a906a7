"""Deliveries in hand together are applied in one transaction; a failure isolates its message.

Real PostgreSQL: the consumer's inbox and a table of effects that records each handler's
transaction id.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text

from shared.db import create_engine, driver_connection, service_metadata, session_factory
from shared.messaging.consumer import Consumer, Delivery
from shared.messaging.tables import inbox_table, outbox_table
from shared.messaging.topology import IncomingMessage, Subscription
from shared.settings import CommonSettings
from shared.unit_of_work import UnitOfWork
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_batches")
metadata = service_metadata("batch_test")
inbox, outbox = inbox_table(metadata), outbox_table(metadata)
current_message: contextvars.ContextVar[str] = contextvars.ContextVar("current_message", default="")


async def record(message: IncomingMessage, uow: UnitOfWork) -> None:
    if message.body == b"poison":
        raise ValueError("a message no handler can apply")
    await uow.session.execute(
        text("INSERT INTO batch_test.effect VALUES (:m, txid_current(), :seen_context)"),
        {"m": message.message_id, "seen_context": current_message.get()},
    )


SUB = Subscription(queue="batch-test", exchange="x", routing_keys=["k"], handler=record)


@pytest_asyncio.fixture
async def consumer() -> AsyncIterator[Consumer]:
    settings = CommonSettings(database_url=DB)
    await recreate_database(settings.asyncpg_dsn)
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    await conn.execute(
        "CREATE SCHEMA batch_test; "
        "CREATE TABLE batch_test.effect (message_id text PRIMARY KEY, txid bigint NOT NULL, context text NOT NULL)"
    )
    await conn.close()
    engine = create_engine(settings, application_name="batch-test")
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    yield Consumer(uow_factory=lambda: UnitOfWork(sessions, outbox=outbox, exchange="x"), inbox=inbox)
    await engine.dispose()


def delivery(message_id: str, body: bytes = b"{}") -> Delivery:
    # Each delivery carries its own context (its trace): the handler must run in it.
    token = current_message.set(message_id)
    try:
        return Delivery(IncomingMessage(message_id, "k", body), contextvars.copy_context())
    finally:
        current_message.reset(token)


async def effects() -> dict[str, tuple[int, str]]:
    conn = await asyncpg.connect(CommonSettings(database_url=DB).asyncpg_dsn)
    try:
        rows = await conn.fetch("SELECT message_id, txid, context FROM batch_test.effect")
    finally:
        await conn.close()
    return {r["message_id"]: (r["txid"], r["context"]) for r in rows}


@pytest.mark.asyncio
async def test_a_batch_is_one_transaction_each_handler_in_its_own_context_repeats_are_duplicates(
    consumer: Consumer,
) -> None:
    assert await consumer.apply(SUB, IncomingMessage("m0", "k", b"{}"))  # applied before
    batch = [delivery("m1"), delivery("m2"), delivery("m1"), delivery("m0"), delivery("m3")]
    await consumer.apply_batch(SUB, batch)
    assert [await w.outcome for w in batch] == [True, True, False, False, True]
    seen = await effects()
    assert sorted(seen) == ["m0", "m1", "m2", "m3"]
    assert len({seen[m][0] for m in ("m1", "m2", "m3")}) == 1  # one transaction
    assert all(seen[m][1] == m for m in ("m1", "m2", "m3"))


@pytest.mark.asyncio
async def test_a_failing_message_fails_alone_and_the_others_are_applied(consumer: Consumer) -> None:
    batch = [delivery("a"), delivery("bad", b"poison"), delivery("b")]
    await consumer.apply_batch(SUB, batch)
    assert await batch[0].outcome and await batch[2].outcome
    with pytest.raises(ValueError):
        await batch[1].outcome
    assert sorted(await effects()) == ["a", "b"]
    # Its inbox row was rolled back with it: a redelivery is applied, not taken for a duplicate.
    retried = [delivery("bad", b"{}")]
    await consumer.apply_batch(SUB, retried)
    assert await retried[0].outcome
    assert sorted(await effects()) == ["a", "b", "bad"]


@pytest.mark.asyncio
async def test_deliveries_in_hand_together_are_handed_over_as_one_batch(consumer: Consumer) -> None:
    from shared.messaging.consumer import Batcher

    batcher = Batcher(consumer, SUB)
    outcomes = await asyncio.gather(*(batcher.submit(IncomingMessage(f"g{i}", "k", b"{}")) for i in range(6)))
    assert outcomes == [True] * 6
    assert len({txid for txid, _ in (await effects()).values()}) == 1


calls: list[list[str]] = []


async def record_batch(messages: list[IncomingMessage], uow: UnitOfWork) -> None:
    calls.append([m.message_id for m in messages])
    if any(m.body == b"poison" for m in messages):
        raise ValueError("a message no handler can apply")
    conn = await driver_connection(uow.session)
    await conn.execute(
        "INSERT INTO batch_test.effect SELECT m, txid_current(), t FROM unnest($1::text[], $2::text[]) AS u(m, t)",
        [m.message_id for m in messages],
        [m.traceparent or "" for m in messages],
    )


BATCH_SUB = Subscription(queue="batch-test-all", exchange="x", routing_keys=["k"], batch_handler=record_batch)


def traced(message_id: str, body: bytes = b"{}") -> Delivery:
    tp = f"00-{len(message_id) + 1:032x}-{abs(hash(message_id)) % 2**63 + 1:016x}-01"
    return Delivery(IncomingMessage(message_id, "k", body, tp), contextvars.copy_context())


@pytest.mark.asyncio
async def test_a_batch_handler_gets_the_new_messages_in_one_call_and_one_transaction(consumer: Consumer) -> None:
    calls.clear()
    assert await consumer.apply(BATCH_SUB, IncomingMessage("b0", "k", b"{}"))  # one message: a batch of one
    batch = [traced("b1"), traced("b2"), traced("b1"), traced("b0"), traced("b3")]
    await consumer.apply_batch(BATCH_SUB, batch)
    assert [await w.outcome for w in batch] == [True, True, False, False, True]
    assert calls == [["b0"], ["b1", "b2", "b3"]]
    seen = await effects()
    assert len({seen[m][0] for m in ("b1", "b2", "b3")}) == 1  # one transaction
    # Each message's own traceparent reaches the handler.
    assert all(seen[m][1] == batch[i].message.traceparent for i, m in ((0, "b1"), (1, "b2"), (4, "b3")))


@pytest.mark.asyncio
async def test_a_failed_batch_is_applied_one_message_a_transaction(consumer: Consumer) -> None:
    calls.clear()
    batch = [traced("c1"), traced("bad", b"poison"), traced("c2")]
    await consumer.apply_batch(BATCH_SUB, batch)
    assert await batch[0].outcome and await batch[2].outcome
    with pytest.raises(ValueError):
        await batch[1].outcome
    assert calls == [["c1", "bad", "c2"], ["c1"], ["bad"], ["c2"]]
    seen = await effects()
    assert sorted(seen) == ["c1", "c2"] and seen["c1"][0] != seen["c2"][0]


@pytest.mark.asyncio
async def test_the_driver_connection_is_inside_the_sessions_transaction(consumer: Consumer) -> None:
    engine = create_engine(CommonSettings(database_url=DB), application_name="batch-test")
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            conn = await driver_connection(session)  # the first statement of the transaction
            await conn.execute("INSERT INTO batch_test.effect VALUES ('rolled back', txid_current(), '')")
            await session.rollback()
        async with sessions() as session, session.begin():
            conn = await driver_connection(session)
            await conn.execute("INSERT INTO batch_test.effect VALUES ('kept', txid_current(), '')")
    finally:
        await engine.dispose()
    assert sorted(await effects()) == ["kept"]


def test_a_subscription_has_exactly_one_kind_of_handler() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Subscription(queue="q", exchange="x", routing_keys=["k"])
    with pytest.raises(ValueError, match="exactly one"):
        Subscription(queue="q", exchange="x", routing_keys=["k"], handler=record, batch_handler=record_batch)
    consumer = Consumer(uow_factory=lambda: None, inbox=inbox, prefetch=8, batch_prefetch=40)  # type: ignore[arg-type,return-value]
    assert (consumer.prefetch_of(SUB), consumer.prefetch_of(BATCH_SUB)) == (8, 40)


@pytest.mark.asyncio
async def test_a_batch_subscription_lingers_so_spread_deliveries_share_a_transaction(consumer: Consumer) -> None:
    """A live stream's messages come one by one: the first waits ``linger_s`` for the others."""
    from shared.messaging.consumer import Batcher

    calls.clear()
    consumer.linger_s = 2.0  # far longer than the spread below, even on a busy machine
    batcher = Batcher(consumer, BATCH_SUB)

    async def later(i: int) -> bool:
        await asyncio.sleep(0.05 * i)  # spread, each well within the first one's wait
        return await batcher.submit(IncomingMessage(f"s{i}", "k", b"{}"))

    assert await asyncio.gather(*(later(i) for i in range(4))) == [True] * 4
    assert calls == [["s0", "s1", "s2", "s3"]]
    assert len({txid for txid, _ in (await effects()).values()}) == 1

    # A one-message subscription does not wait: its handler runs in its delivery's context.
    consumer.linger_s = 5.0
    one = Batcher(consumer, SUB)
    started = asyncio.get_running_loop().time()
    assert await one.submit(IncomingMessage("alone", "k", b"{}"))
    assert asyncio.get_running_loop().time() - started < consumer.linger_s
