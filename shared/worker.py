"""Run a service's worker process: its consumers and its outbox relay, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import aio_pika
import uvicorn
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import database_ready
from shared.heap import freeze_startup_heap
from shared.messaging.consumer import Consumer
from shared.messaging.housekeeping import run_housekeeping
from shared.messaging.monitor import run_monitor
from shared.messaging.relay import OutboxRelay
from shared.messaging.topology import Subscription
from shared.metrics import WORKER_TASK_RESTARTS
from shared.settings import CommonSettings
from shared.table_upkeep import keep_tables
from shared.unit_of_work import ServiceDatabase
from shared.web import create_app

log = logging.getLogger(__name__)


@dataclass
class WorkerParts:
    """What a service's composition root hands to :func:`run_worker`."""

    settings: CommonSettings
    database: ServiceDatabase  # the engine, the units of work over its outbox; disposed at the end
    inbox: Table
    subscriptions: Sequence[Subscription] = ()
    background: Sequence[Callable[[asyncio.Event], Awaitable[None]]] = field(default_factory=list)

    @property
    def engine(self) -> AsyncEngine:
        return self.database.engine

    @property
    def outbox(self) -> Table:
        return self.database.OUTBOX


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
    """Consume, relay and run the background jobs until SIGTERM (or ``stop``), then stop gracefully.

    Graceful stop, within ``settings.worker_shutdown_grace_s`` (below the pod's
    ``terminationGracePeriodSeconds``): take no new deliveries; let the handlers in progress
    finish and ack; then let the background jobs end their round; then let the relay publish
    what is still due in the outbox (including what the handlers and jobs just wrote); then
    close. Whatever could not finish in time is safe anyway: an unacked message is redelivered
    and deduped by the inbox, an unpublished outbox row is published by the next relay.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not possible outside the main thread (tests): there the caller sets ``stop``.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    settings = parts.settings
    service = parts.outbox.schema or "worker"
    freeze_startup_heap()
    connection = await aio_pika.connect_robust(settings.amqp_url)
    consumer: Consumer | None = None
    relay_stop = asyncio.Event()
    probes_stop = asyncio.Event()
    probes: asyncio.Task[None] | None = None
    try:
        if parts.subscriptions:
            channel = await connection.channel()
            consumer = Consumer(
                uow_factory=parts.database.uow,
                inbox=parts.inbox,
                prefix=settings.bus_prefix,
                prefetch=settings.consumer_prefetch,
                batch_prefetch=settings.consumer_batch_prefetch,
                linger_s=settings.consumer_linger_s,
                service=service,
            )
            await consumer.start(channel, list(parts.subscriptions))
        relay = OutboxRelay(
            engine=parts.engine,
            outbox=parts.outbox,
            connection=connection,
            listen_dsn=settings.listen_dsn,
            prefix=settings.bus_prefix,
        )
        grace = settings.worker_shutdown_grace_s
        relay_task = asyncio.create_task(
            supervise("relay", lambda: relay.run(relay_stop, flush_s=grace), stop=relay_stop, service=service)
        )
        tasks = [
            asyncio.create_task(
                supervise(
                    "housekeeping",
                    lambda: run_housekeeping(parts.engine, outbox=parts.outbox, inbox=parts.inbox, stop=stop),
                    stop=stop,
                    service=service,
                )
            ),
            asyncio.create_task(
                supervise(
                    "table upkeep",
                    lambda: keep_tables(parts.engine, schema=str(parts.outbox.schema), stop=stop),
                    stop=stop,
                    service=service,
                )
            ),
            asyncio.create_task(
                supervise(
                    "monitor",
                    lambda: run_monitor(
                        engine=parts.engine,
                        outbox=parts.outbox,
                        connection=connection,
                        subscriptions=list(parts.subscriptions),
                        prefix=settings.bus_prefix,
                        service=service,
                        stop=stop,
                        every_s=settings.worker_monitor_interval_s,
                    ),
                    stop=stop,
                    service=service,
                )
            ),
        ]
        tasks += [
            asyncio.create_task(supervise(_job_name(job), partial(job, stop), stop=stop, service=service))
            for job in parts.background
        ]
        if settings.worker_http_port:
            probes = asyncio.create_task(
                serve_probes(settings.worker_http_port, engine=parts.engine, connection=connection, stop=probes_stop)
            )
        log.info("worker started")
        await stop.wait()
        deadline = loop.time() + grace
        log.info("worker stopping: finishing deliveries in hand, then flushing the outbox", extra={"grace_s": grace})
        drained = await consumer.stop(within_s=grace) if consumer is not None else True
        # Background jobs (the scoring refresher…) watch ``stop`` and end their current round, which
        # may write outbox rows too; cancel the ones that do not end in half the time left.
        await _finish_all(tasks, (deadline - loop.time()) / 2)
        relay_stop.set()
        await _finish(relay_task, deadline - loop.time())
        if not drained:
            log.warning("worker stopping with deliveries in hand: they will be redelivered (inbox dedupes)")
    finally:
        probes_stop.set()
        if probes is not None:
            await _finish(probes, 5)
        await connection.close()
        await parts.database.dispose()
        log.info("worker stopped")


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    stop: asyncio.Event,
    service: str,
    first_backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
) -> None:
    """Run one of the worker's long-lived jobs until ``stop``, restarting it whenever it fails.

    A job (the outbox relay, the replay loop, the scoring refresher …) that dies on a passing
    error — PostgreSQL restarting, a dropped connection — must not leave the process alive but
    deaf: accepted events would then wait in the outbox forever. So a failure is logged, counted
    (``sqi_worker_task_restarts_total``) and retried after a backoff that grows while the job keeps
    failing quickly and starts again from one second once it has run for a minute.
    """
    loop = asyncio.get_running_loop()
    backoff = first_backoff_s
    while not stop.is_set():
        started = loop.time()
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker task failed; restarting it", extra={"task": name})
        else:
            if stop.is_set():
                return
            log.warning("worker task ended before the worker stopped; restarting it", extra={"task": name})
        WORKER_TASK_RESTARTS.labels(service=service, task=name).inc()
        if loop.time() - started > 60:
            backoff = first_backoff_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        backoff = min(backoff * 2, max_backoff_s)


def _job_name(job: Callable[..., object]) -> str:
    return getattr(job, "__qualname__", None) or getattr(job, "__name__", None) or repr(job)


async def _finish(task: asyncio.Future[None], within_s: float) -> None:
    await _finish_all([task], within_s)


async def _finish_all(tasks: Sequence[asyncio.Future[None]], within_s: float) -> None:
    """Wait up to ``within_s`` seconds for ``tasks`` to end by themselves, then cancel the rest."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=max(within_s, 0.1))
    for task in pending:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.warning("worker task ended with an error", extra={"error": repr(result)})
