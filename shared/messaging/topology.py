"""The broker topology, declared in code: exchanges, consumer queues, retry and parking.

For each subscription (one consumer, one purpose) there are three queues:
- ``<queue>``: quorum queue bound to the producer's topic exchange; a rejected message is
  dead-lettered to the retry exchange;
- ``<queue>.retry``: holds it for ``retry_delay_ms`` then dead-letters it back to ``<queue>``;
- ``<queue>.parking``: where a message goes after ``max_attempts``, for a person to look at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

RETRY_EXCHANGE = "sqi.retry"


@dataclass(frozen=True)
class IncomingMessage:
    message_id: str
    routing_key: str
    body: bytes
    traceparent: str | None = None
    """W3C traceparent of the message's consumer span (filled by the consumer): a batch handler
    runs in a span of its own, so this is how it reaches each message's trace."""


Handler = Callable[[IncomingMessage, Any], Awaitable[None]]
BatchHandler = Callable[[list[IncomingMessage], Any], Awaitable[None]]


def one_message(batch_handler: BatchHandler) -> Handler:
    """A batch handler applied to one message, as the batch of that message alone (tests and
    replays that hand over a single message)."""

    async def handle(message: IncomingMessage, uow: Any) -> None:
        await batch_handler([message], uow)

    return handle


@dataclass(frozen=True)
class Subscription:
    """An explicit subscription: which exchange and routing keys feed which handler.

    Exactly one of ``handler`` (one message at a time) and ``batch_handler`` (every new message
    of a transaction in one call; see :mod:`shared.messaging.consumer`).
    """

    queue: str
    exchange: str
    routing_keys: Sequence[str]
    handler: Handler | None = None
    batch_handler: BatchHandler | None = None
    max_attempts: int = 5
    retry_delay_ms: int = 5_000
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.batch_handler is None):
            raise ValueError(f"subscription {self.queue!r}: give exactly one of handler and batch_handler")


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_subscription(channel: AbstractChannel, subscription: Subscription, *, prefix: str) -> AbstractQueue:
    queue_name = prefix + subscription.queue
    retry_exchange = await channel.declare_exchange(prefix + RETRY_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    source = await declare_exchange(channel, prefix + subscription.exchange)
    queue = await channel.declare_queue(
        queue_name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": retry_exchange.name,
            "x-dead-letter-routing-key": queue_name,
        },
    )
    for key in subscription.routing_keys:
        await queue.bind(source, routing_key=key)
    retry = await channel.declare_queue(
        f"{queue_name}.retry",
        durable=True,
        arguments={
            "x-message-ttl": subscription.retry_delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue_name,
        },
    )
    await retry.bind(retry_exchange, routing_key=queue_name)
    await channel.declare_queue(f"{queue_name}.parking", durable=True)
    return queue
