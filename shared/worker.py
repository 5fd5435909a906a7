"""Run a service's worker process: its consumers and its outbox relay, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aio_pika
import uvicorn
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import database_ready
from shared.messaging.consumer import Consumer
from shared.messaging.housekeeping import run_housekeeping
from shared.messaging.relay import OutboxRelay
from shared.messaging.topology import Subscription
from shared.settings import CommonSettings
from shared.unit_of_work import UnitOfWork
from shared.web import create_app

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


async def serve_probes(
    port: int, *, engine: AsyncEngine, connection: aio_pika.abc.AbstractRobustConnection, stop: asyncio.Event
) -> None:
    """/healthz (the process runs), /readyz (database and broker answer) and /metrics for a worker."""

    async def db_ready() -> bool:
        return await database_ready(engine)

    async def broker_ready() -> bool:
        return not connection.is_closed

    app = create_app("worker", title="SQI worker", checks={"database": db_ready, "broker": broker_ready})
    # Inside the pod the kubelet probes the pod's address, so listen on all interfaces.
    config = uvicorn.Config(app, host="0.0.0.0", port=port, log_level="warning", lifespan="off")  # noqa: S104
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


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
        tasks = [
            asyncio.create_task(relay.run(stop)),
            asyncio.create_task(run_housekeeping(parts.engine, outbox=parts.outbox, inbox=parts.inbox, stop=stop)),
        ]
        tasks += [asyncio.ensure_future(job(stop)) for job in parts.background]
        if settings.worker_http_port:
            tasks.append(
                asyncio.create_task(
                    serve_probes(settings.worker_http_port, engine=parts.engine, connection=connection, stop=stop)
                )
            )
        log.info("worker started")
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await connection.close()
        await parts.engine.dispose()
        log.info("worker stopped")
