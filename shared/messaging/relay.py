"""The outbox relay: publishes committed outbox rows with publisher confirms.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several relays can run; a row is marked
published only after the broker confirmed it, so a crash between commit and publish (or
between publish and mark) leads to a re-publish, never a loss. Consumers dedupe by message
id. Failed rows are retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import aio_pika
from opentelemetry import propagate, trace
from sqlalchemy import Table, and_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.background import cancel_and_wait
from shared.listener import Listener
from shared.messaging.topology import declare_exchange
from shared.metrics import OUTBOX_PUBLISHED
from shared.unit_of_work import outbox_channel

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

BATCH = 500
MAX_BACKOFF_S = 300


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        outbox: Table,
        connection: aio_pika.abc.AbstractRobustConnection,
        listen_dsn: str,
        prefix: str = "",
        idle_poll_s: float = 1.0,
        batch: int = BATCH,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._connection = connection
        self._listen_dsn = listen_dsn
        self._prefix = prefix
        self._idle_poll_s = idle_poll_s
        # Rows claimed and published per transaction; their confirms are awaited together.
        self._batch = batch
        self._wake = asyncio.Event()
        # Declared exchanges of one channel: a run opens its own, and ``supervise`` restarts a run
        # that a database error ended — publishing through the closed channel's exchanges failed
        # every row until the process restarted (session 18's audit).
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self._exchanges_channel: aio_pika.abc.AbstractChannel | None = None
        self._service = outbox.schema or ""

    async def run(self, stop: asyncio.Event, *, flush_s: float = 0.0) -> None:
        """Publish until ``stop``; then, for at most ``flush_s`` seconds, publish what is still due.

        The worker sets ``stop`` only after its consumers handed back their last deliveries, so
        the final flush also carries the messages those handlers wrote (graceful SIGTERM).
        """
        channel = await self._connection.channel(publisher_confirms=True)
        # Woken by NOTIFY after each commit that wrote rows; the poll covers a lost one, and the
        # time the listener is reconnecting.
        listener = Listener(
            self._listen_dsn,
            outbox_channel(self._outbox.schema or "public"),
            lambda _payload: self._wake.set(),
            name="outbox relay listener",
        )
        listening = asyncio.create_task(listener.run())
        try:
            while not stop.is_set():
                published = await self.publish_pending(channel)
                if published < self._batch:
                    self._wake.clear()
                    # Wake on NOTIFY, on the poll interval, or at once when asked to stop.
                    waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                    await asyncio.wait(waits, timeout=self._idle_poll_s, return_when=asyncio.FIRST_COMPLETED)
                    for w in waits:
                        w.cancel()
            if flush_s > 0:
                await self.flush(channel, flush_s)
        finally:
            await cancel_and_wait(listening)
            await channel.close()

    async def flush(self, channel: aio_pika.abc.AbstractChannel, seconds: float) -> int:
        """Publish every due row, batch after batch, for at most ``seconds``; returns rows published."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        total = 0
        while loop.time() < deadline:
            try:
                published = await asyncio.wait_for(self.publish_pending(channel), deadline - loop.time())
            except TimeoutError:
                break
            total += published
            if published == 0:
                break
        log.info("outbox flushed before stopping", extra={"rows": total})
        return total

    async def _exchange(self, channel: aio_pika.abc.AbstractChannel, name: str) -> aio_pika.abc.AbstractExchange:
        if channel is not self._exchanges_channel:
            self._exchanges, self._exchanges_channel = {}, channel
        if name not in self._exchanges:
            self._exchanges[name] = await declare_exchange(channel, self._prefix + name)
        return self._exchanges[name]

    async def publish_pending(self, channel: aio_pika.abc.AbstractChannel) -> int:
        """Publish one batch of due rows; returns how many were published."""
        t = self._outbox
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(t.c.id, t.c.exchange, t.c.routing_key, t.c.body, t.c.trace_headers, t.c.attempts)
                    .where(and_(t.c.published_at.is_(None), t.c.next_attempt_at <= now))
                    .order_by(t.c.created_at)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            results = await asyncio.gather(*(self._publish_one(channel, row) for row in rows), return_exceptions=True)
            ok = [row.id for row, res in zip(rows, results, strict=True) if res is None]
            if ok:
                await conn.execute(update(t).where(t.c.id.in_(ok)).values(published_at=now))
            for row, res in zip(rows, results, strict=True):
                if isinstance(res, BaseException):
                    delay = min(MAX_BACKOFF_S, 2 ** min(row.attempts, 12))
                    log.warning("outbox publish failed", extra={"outbox_id": str(row.id), "error": repr(res)})
                    await conn.execute(
                        update(t)
                        .where(t.c.id == row.id)
                        .values(
                            attempts=row.attempts + 1,
                            next_attempt_at=now + timedelta(seconds=delay),
                            last_error=repr(res)[:1000],
                        )
                    )
        # Counted once the marks are committed: a row counts once however often it is re-published.
        if ok:
            OUTBOX_PUBLISHED.labels(self._service).inc(len(ok))
        return len(ok)

    async def _publish_one(self, channel: aio_pika.abc.AbstractChannel, row: object) -> None:
        exchange = await self._exchange(channel, row.exchange)  # type: ignore[attr-defined]
        context = propagate.extract(row.trace_headers or {})  # type: ignore[attr-defined]
        with tracer.start_as_current_span("outbox relay", context=context, kind=trace.SpanKind.INTERNAL):
            message = aio_pika.Message(
                body=row.body,  # type: ignore[attr-defined]
                message_id=str(row.id),  # type: ignore[attr-defined]
                type=row.routing_key,  # type: ignore[attr-defined]
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                timestamp=datetime.now(UTC),
            )
            await exchange.publish(message, routing_key=row.routing_key, mandatory=False)  # type: ignore[attr-defined]
