"""Run a service's worker process: its consumers and its outbox relay, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aio_pika
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging.consumer import Consumer
from shared.messaging.relay import OutboxRelay
from shared.messaging.topology import Subscription
from shared.settings import CommonSettings
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class WorkerParts:
    """What a service's composition root hands to :func:`run_worker`."""

    settings: CommonSettings
    engine: AsyncEngine
    outbox: Table
    inbox: Table
    uow_factory: Callable[[], UnitOfWork]
    subscriptions: Sequence[Subscription] = ()
    background: Sequence[Callable[[asyncio.Event], Awaitable[None]]] = field(default_factory=list)
    prefetch: int = 8


async def run_worker(parts: WorkerParts, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not possible outside the main thread (tests): there the caller sets ``stop``.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    settings = parts.settings
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        if parts.subscriptions:
            channel = await connection.channel()
            consumer = Consumer(
                uow_factory=parts.uow_factory,
                inbox=parts.inbox,
                prefix=settings.bus_prefix,
                prefetch=parts.prefetch,
            )
            await consumer.start(channel, list(parts.subscriptions))
        relay = OutboxRelay(
            engine=parts.engine,
            outbox=parts.outbox,
            connection=connection,
            listen_dsn=settings.asyncpg_dsn,
            prefix=settings.bus_prefix,
        )
        tasks = [asyncio.create_task(relay.run(stop))]
        tasks += [asyncio.create_task(job(stop)) for job in parts.background]
        log.info("worker started")
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await connection.close()
        await parts.engine.dispose()
        log.info("worker stopped")
