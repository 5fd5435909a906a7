"""A message that fails, waits in the retry queue and comes back keeps its routing key.

Dead-lettering through ``<queue>.retry`` replaces the routing key with the queue's name; a
handler that dispatches on the key would otherwise acknowledge the retried message with no
effect. The consumer restores the producer's key.
"""

from __future__ import annotations

import asyncio
import os

import aio_pika
import orjson
import pytest

from shared.messaging.consumer import Consumer
from shared.messaging.topology import IncomingMessage, Subscription
from shared.settings import CommonSettings
from sqi_cli.scratch import delete_broker_objects

pytestmark = pytest.mark.integration


class FakeUow:
    """Only what Consumer.apply needs (the session's driver connection, as shared.db reaches it),
    so the test can watch the broker's behaviour alone."""

    def __init__(self) -> None:
        self.session = self
        self.dbapi_connection = self
        self.driver_connection = self

    async def __aenter__(self) -> FakeUow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def connection(self) -> FakeUow:
        return self

    async def get_raw_connection(self) -> FakeUow:
        return self

    def is_in_transaction(self) -> bool:
        return True

    async def fetch(self, *_: object) -> list[tuple[str]]:
        return [("m1",)]  # the inbox insert's RETURNING: the test's one message is new


def test_retried_message_keeps_the_producers_routing_key() -> None:
    settings = CommonSettings(bus_prefix=f"retry{os.getpid()}.")
    seen: list[str] = []

    async def fail_once(message: IncomingMessage, uow: object) -> None:
        seen.append(message.routing_key)
        if len(seen) == 1:
            raise RuntimeError("a passing failure (e.g. a deadlock)")

    sub = Subscription(
        queue="retry-test",
        exchange="retry.events",
        routing_keys=["retry.thing.v1"],
        handler=fail_once,
        retry_delay_ms=200,
    )

    async def scenario() -> None:
        from sqlalchemy import MetaData

        from shared.messaging.tables import inbox_table

        connection = await aio_pika.connect_robust(settings.amqp_url)
        async with connection:
            consumer = Consumer(
                uow_factory=FakeUow,
                inbox=inbox_table(MetaData(schema="x")),  # type: ignore[arg-type]
                prefix=settings.bus_prefix,
            )
            await consumer.start(await connection.channel(), [sub])
            channel = await connection.channel()
            exchange = await channel.get_exchange(settings.bus_prefix + "retry.events")
            await exchange.publish(
                aio_pika.Message(body=orjson.dumps({}), message_id="m1", type="retry.thing.v1"),
                routing_key="retry.thing.v1",
            )
            for _ in range(100):
                if len(seen) >= 2:
                    break
                await asyncio.sleep(0.1)
        await delete_broker_objects(settings, ["retry-test"], ["retry.events"])

    asyncio.run(scenario())
    assert seen == ["retry.thing.v1", "retry.thing.v1"]
