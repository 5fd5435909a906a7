"""Consuming with an inbox: dedupe, effects and outgoing messages in one transaction; ack after commit.

A handler is a plain async function ``(message, uow)``. The inbox row (consumer, message id)
is inserted in the handler's transaction: a redelivered message finds it and is acked without
effect. Any exception rolls back and rejects the delivery, which the topology routes to the
retry queue and, after ``max_attempts``, to the parking queue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.messaging.topology import IncomingMessage, Subscription, declare_subscription
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def attempts_so_far(message: AbstractIncomingMessage, queue_name: str) -> int:
    """How many times this message was rejected from ``queue_name`` (from ``x-death``)."""
    deaths = (message.headers or {}).get("x-death")
    if not isinstance(deaths, list):
        return 0
    total = 0
    for death in deaths:
        if isinstance(death, dict) and death.get("queue") == queue_name:
            count = death.get("count", 0)
            total += int(count) if isinstance(count, int | str) else 0
    return total


def original_routing_key(message: AbstractIncomingMessage) -> str:
    """The key the producer published with, also after a trip through the retry queue.

    A retried message comes back from ``<queue>.retry`` with the queue's name as its routing
    key; the relay also puts the key in the AMQP ``type`` property, which dead-lettering keeps.
    """
    return message.type or message.routing_key or ""


class Consumer:
    def __init__(
        self,
        *,
        uow_factory: Callable[[], UnitOfWork],
        inbox: Table,
        prefix: str = "",
        prefetch: int = 8,
    ) -> None:
        self._uow_factory = uow_factory
        self._inbox = inbox
        self._prefix = prefix
        self._prefetch = prefetch

    async def start(self, channel: AbstractChannel, subscriptions: list[Subscription]) -> None:
        await channel.set_qos(prefetch_count=self._prefetch)
        for sub in subscriptions:
            queue = await declare_subscription(channel, sub, prefix=self._prefix)
            # queue.consume(callback) keeps the handler inside the consumer span (tracing).
            await queue.consume(self._callback(channel, sub, queue.name))

    def _callback(
        self, channel: AbstractChannel, sub: Subscription, queue_name: str
    ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def on_message(message: AbstractIncomingMessage) -> None:
            message_id = message.message_id or ""
            try:
                await self.apply(sub, IncomingMessage(message_id, original_routing_key(message), message.body))
            except Exception:
                attempts = attempts_so_far(message, queue_name) + 1
                log.exception(
                    "handler failed",
                    extra={"queue": sub.queue, "message_id": message_id, "attempt": attempts},
                )
                if attempts >= sub.max_attempts:
                    await channel.default_exchange.publish(
                        aio_pika.Message(
                            body=message.body,
                            message_id=message_id,
                            type=message.type,
                            headers={**(message.headers or {}), "x-sqi-failed-queue": queue_name},
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=f"{queue_name}.parking",
                    )
                    await message.ack()
                else:
                    await message.reject(requeue=False)
                return
            await message.ack()

        return on_message

    async def apply(self, sub: Subscription, message: IncomingMessage) -> bool:
        """Apply one message exactly once in effect; False when it was a duplicate."""
        async with self._uow_factory() as uow:
            inserted = await uow.session.execute(
                pg_insert(self._inbox)
                .values(consumer=sub.queue, message_id=message.message_id)
                .on_conflict_do_nothing()
                .returning(self._inbox.c.message_id)
            )
            if inserted.first() is None:
                return False
            await sub.handler(message, uow)
        return True
