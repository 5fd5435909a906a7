"""Consuming with an inbox: dedupe, effects and outgoing messages in one transaction; ack after commit.

A subscription's handler is a plain async function: ``handler(message, uow)`` for one message,
or ``batch_handler(messages, uow)`` for every new message of a transaction at once. The inbox
rows (consumer, message id) are inserted in the handler's transaction: a redelivered message
finds its row and is acked without effect. Any exception rolls back and rejects the delivery,
which the topology routes to the retry queue and, after ``max_attempts``, to the parking queue —
unless the database could not be reached at all: then the delivery goes back to its queue after
the retry delay, not counted (an outage must not park healthy messages).

Deliveries of one queue that are in hand together are applied together: one transaction, one
inbox insert (one prepared statement on the driver's connection), then each delivery is acked.
A transaction costs about a millisecond of CPU whatever it holds (BEGIN, the inbox, COMMIT: a
PostgreSQL round trip is ≈ 100 µs of client CPU on these machines), and scoring announces a
refresh as hundreds of small messages. When such a batch fails, its messages are applied one
by one, each in its own transaction, so one bad message is retried or parked alone and never
holds back the others.

Why two kinds of handler rather than every handler a batch handler behind an adapter: a
one-message handler runs in its own delivery's context (the aio-pika consumer span, as the
instrumentation made it, and anything else the context holds), and an adapter could only rebuild
that from the traceparent; most subscriptions (ratings, petitions, units, calendars) gain nothing
from one call per batch, their per-message statements being few or already set-based. A batch
handler is for the streams, whose statements cost per call whatever their size (the dossier
events; reporting's score messages, a refresh's hundreds of rows each tick): given the batch's new
messages in delivery order, it runs in one span linked to every message's consumer span (the
OpenTelemetry way for batch processing), and each message's own ``traceparent`` is on the
message. Subscriptions with a batch handler take the larger prefetch (``consumer_batch_prefetch``)
so that a burst fits in one or two transactions, and their first delivery in hand waits
``consumer_linger_s`` for the next ones (as a Kafka producer's ``linger.ms``): under a live
stream ingest publishes one small message per request, ≈ 36 a second, and without the wait
nearly every one was a transaction of its own in each of the three consuming services.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from opentelemetry import context as otel_context
from opentelemetry import trace
from sqlalchemy import Table

from shared.db import database_unreachable, driver_connection
from shared.messaging.topology import Handler, IncomingMessage, Subscription, declare_subscription
from shared.metrics import MESSAGES_CONSUMED, MESSAGES_PARKED, MESSAGES_RETRIED
from shared.trace_context import current_traceparent, links_of
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


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


def message_traceparent(message: AbstractIncomingMessage) -> str | None:
    """The traceparent of the delivery's consumer span (the instrumentation's, current while the
    callback runs), else the producer's from the headers (no instrumentation)."""
    tp = current_traceparent()
    if tp is None:
        header = (message.headers or {}).get("traceparent")
        tp = header if isinstance(header, str) else None
    return tp


async def _call(handler: Handler, message: IncomingMessage, uow: UnitOfWork) -> None:
    await handler(message, uow)  # a coroutine, for create_task


@dataclass
class Delivery:
    """A delivery waiting for its batch: the message, its trace context, its outcome."""

    message: IncomingMessage
    context: contextvars.Context
    outcome: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Batcher:
    """Collects the deliveries of one subscription that arrive while a batch is applied."""

    def __init__(self, consumer: Consumer, sub: Subscription) -> None:
        self._consumer, self._sub = consumer, sub
        self._waiting: list[Delivery] = []
        self._running = False

    async def submit(self, message: IncomingMessage) -> bool:
        waiting = Delivery(message, contextvars.copy_context())
        self._waiting.append(waiting)
        if not self._running:
            self._running = True
            # A task of its own, queued after the deliveries already in hand, so they join it.
            asyncio.get_running_loop().create_task(self._drain())
        try:
            # Shielded: a dropped connection cancels the callbacks of its channel's deliveries, and
            # with them the outcome a batch in hand sets after its commit — which then raised and
            # ended the drain, stranding every later delivery (session 18's audit).
            return await asyncio.shield(waiting.outcome)
        except asyncio.CancelledError:
            # Still applied with its batch (its redelivery is then a duplicate); nobody reads the
            # outcome now.
            waiting.outcome.add_done_callback(_read_outcome)
            raise

    async def _drain(self) -> None:
        try:
            # A batch's first delivery waits ``linger_s`` for company: a live stream spreads its
            # messages over the second, so each would otherwise be a transaction of its own.
            await asyncio.sleep(self._consumer.linger_s if self._sub.batch_handler is not None else 0)
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._consumer.apply_batch(self._sub, batch)
        finally:
            self._running = False


def _read_outcome(outcome: asyncio.Future[bool]) -> None:
    """Mark an outcome's exception retrieved (no "never retrieved" warning for a cancelled delivery)."""
    if not outcome.cancelled():
        outcome.exception()


class Consumer:
    def __init__(
        self,
        *,
        uow_factory: Callable[[], UnitOfWork],
        inbox: Table,
        prefix: str = "",
        prefetch: int = 8,
        batch_prefetch: int = 32,
        linger_s: float = 0.0,
        service: str = "",
    ) -> None:
        self._uow_factory = uow_factory
        self.linger_s = linger_s
        self._inbox = inbox
        # One statement text per consumer: asyncpg prepares it once per connection and reuses it.
        self._record_sql = (
            f"INSERT INTO {inbox.schema}.{inbox.name} (consumer, message_id)"
            " SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING message_id"
        )
        self._prefix = prefix
        self._prefetch = prefetch
        self._batch_prefetch = batch_prefetch
        self._service = service or (inbox.schema or "")
        self._consuming: list[tuple[AbstractQueue, str]] = []
        self._batchers: dict[str, Batcher] = {}
        # Deliveries being handled right now: a graceful stop waits for them to be acked.
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def prefetch_of(self, sub: Subscription) -> int:
        """Unacked deliveries the broker lets this subscription hold: the most a transaction gets."""
        return self._batch_prefetch if sub.batch_handler is not None else self._prefetch

    async def start(self, channel: AbstractChannel, subscriptions: list[Subscription]) -> None:
        for sub in subscriptions:
            queue = await declare_subscription(channel, sub, prefix=self._prefix)
            # Per consumer (basic.qos, not global): it holds for the consumers started after it.
            await channel.set_qos(prefetch_count=self.prefetch_of(sub))
            # queue.consume(callback) keeps the handler inside the consumer span (tracing).
            tag = await queue.consume(self._callback(channel, sub, queue.name))
            self._consuming.append((queue, tag))

    async def stop(self, within_s: float) -> bool:
        """Take no new deliveries, then wait (at most ``within_s`` seconds) for the ones being handled.

        True when every delivery in hand was handled and acked (or rejected) in time. Messages
        prefetched but not started stay unacked and go back to the queue when the channel closes.
        """
        for queue, tag in self._consuming:
            try:
                await queue.cancel(tag)
            except Exception as exc:  # a closed channel: nothing more can arrive anyway
                log.warning("consumer cancel failed", extra={"queue": queue.name, "error": repr(exc)})
        self._consuming.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), within_s)
        except TimeoutError:
            log.warning("graceful stop: deliveries still in hand", extra={"in_flight": self._in_flight})
            return False
        return True

    def _callback(
        self, channel: AbstractChannel, sub: Subscription, queue_name: str
    ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        batcher = self._batchers.setdefault(sub.queue, Batcher(self, sub))

        async def on_message(message: AbstractIncomingMessage) -> None:
            self._in_flight += 1
            self._idle.clear()
            try:
                await handle(message)
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()

        async def handle(message: AbstractIncomingMessage) -> None:
            message_id = message.message_id or ""
            try:
                await batcher.submit(
                    IncomingMessage(
                        message_id, original_routing_key(message), message.body, message_traceparent(message)
                    )
                )
            except Exception as exc:
                if database_unreachable(exc):
                    # Not the message's fault: an attempt not counted (parking healthy messages
                    # after a failover of ``max_attempts × retry_delay`` left their effects
                    # missing until a person moved them back; session 18's audit). Held for the
                    # retry delay, so an outage is no tight loop, then back to the queue.
                    log.warning(
                        "database unreachable; the delivery goes back to its queue",
                        extra={"queue": sub.queue, "message_id": message_id, "error": repr(exc)},
                    )
                    await asyncio.sleep(sub.retry_delay_ms / 1000)
                    await message.nack(requeue=True)
                    return
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
                    MESSAGES_PARKED.labels(self._service, sub.queue).inc()
                else:
                    await message.reject(requeue=False)
                    MESSAGES_RETRIED.labels(self._service, sub.queue).inc()
                return
            await message.ack()
            MESSAGES_CONSUMED.labels(self._service, sub.queue).inc()

        return on_message

    async def apply(self, sub: Subscription, message: IncomingMessage) -> bool:
        """Apply one message exactly once in effect; False when it was a duplicate."""
        [new] = await self._apply_in_one(sub, [Delivery(message, contextvars.copy_context())])
        return new

    async def apply_batch(self, sub: Subscription, batch: list[Delivery]) -> None:
        """Apply the waiting deliveries in one transaction, or one by one if that fails.

        Each delivery's outcome (new or duplicate, or the exception that failed it alone) is
        set on its future; the caller acks or rejects it.
        """
        if len(batch) > 1:
            try:
                outcomes = await self._apply_together(sub, batch)
            except Exception:
                log.warning(
                    "batch failed; applying its messages one by one", extra={"queue": sub.queue, "size": len(batch)}
                )
            else:
                for waiting, new in zip(batch, outcomes, strict=True):
                    waiting.outcome.set_result(new)
                return
        for waiting in batch:
            try:
                new = await asyncio.get_running_loop().create_task(
                    self.apply(sub, waiting.message), context=waiting.context
                )
            except Exception as exc:
                waiting.outcome.set_exception(exc)
            else:
                waiting.outcome.set_result(new)

    async def _apply_together(self, sub: Subscription, batch: list[Delivery]) -> list[bool]:
        if sub.batch_handler is None:
            return await self._apply_in_one(sub, batch)
        # The batch's own span, linked to each message's (not a child of the first one's).
        with tracer.start_as_current_span(
            f"{sub.queue} process",
            context=otel_context.Context(),
            kind=trace.SpanKind.CONSUMER,
            links=links_of(w.message.traceparent for w in batch),
            attributes={"messaging.system": "rabbitmq", "messaging.batch.message_count": len(batch)},
        ):
            return await self._apply_in_one(sub, batch)

    async def _apply_in_one(self, sub: Subscription, batch: list[Delivery]) -> list[bool]:
        """One transaction: the inbox rows, then the new messages (the first of a repeated id;
        a repeat within the batch is a duplicate) to the batch handler in one call, or each to
        the handler in its own delivery's context."""
        loop = asyncio.get_running_loop()
        async with self._uow_factory() as uow:
            new = await self._record(uow, sub, [w.message.message_id for w in batch])
            outcomes, fresh = [], []
            for waiting in batch:
                first = waiting.message.message_id in new
                new.discard(waiting.message.message_id)
                outcomes.append(first)
                if first:
                    fresh.append(waiting)
            if sub.batch_handler is not None:
                if fresh:
                    await sub.batch_handler([w.message for w in fresh], uow)
            else:
                handler = sub.handler
                assert handler is not None  # Subscription checks it has one
                for waiting in fresh:
                    await loop.create_task(_call(handler, waiting.message, uow), context=waiting.context)
        return outcomes

    async def _record(self, uow: UnitOfWork, sub: Subscription, message_ids: list[str]) -> set[str]:
        """Insert the inbox rows; the ids that were not there before (this transaction's to apply)."""
        conn = await driver_connection(uow.session)
        return {row[0] for row in await conn.fetch(self._record_sql, sub.queue, message_ids)}
