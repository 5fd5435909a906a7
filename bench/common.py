"""What every benchmark shares: a scratch database and bus prefix, the platform, cleanup, tables."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import aio_pika

from shared.settings import CommonSettings
from sqi_cli.platform import SERVICES, Platform, worker_names
from sqi_cli.scratch import delete_broker_objects, drop_database, free_port_block, recreate_database

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "bench."
EXCHANGES = ("ingest.events", "scoring.events", "feedback.events", "reporting.events")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def scratch_settings(name: str) -> CommonSettings:
    """Point this process (and the ones it starts) at a scratch database and a ``bench.`` bus prefix."""
    base = CommonSettings()
    parsed = urlparse(base.database_url)
    url = parsed._replace(path=f"/{name}").geturl()
    os.environ["SQI_DATABASE_URL"] = url
    os.environ["SQI_BUS_PREFIX"] = PREFIX
    os.environ.setdefault("SQI_LOG_LEVEL", "WARNING")
    return CommonSettings()


def all_queues() -> list[str]:
    from sqi_cli.migrate import subscriptions

    return [s.queue for s in subscriptions()]


async def queue_depths(settings: CommonSettings, queues: Sequence[str]) -> dict[str, int]:
    connection = await aio_pika.connect(settings.amqp_url)
    out: dict[str, int] = {}
    async with connection:
        for queue in queues:
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(settings.bus_prefix + queue, passive=True)
                out[queue] = int(declared.declaration_result.message_count or 0)
            except aio_pika.exceptions.ChannelClosed:
                out[queue] = -1
    return out


def bench_platform(
    services: Sequence[str] = SERVICES,
    *,
    workers: Sequence[str] | None = None,
    scoring_workers: int = 1,
    scoring_metrics: bool = False,
) -> Platform:
    """The platform's own processes (as ``./sqi up`` runs them) on free ports; with
    ``scoring_metrics`` each scoring worker also serves its ``/metrics`` (:func:`scoring_worker_metrics`)."""
    base = free_port_block(len(SERVICES) + 1, start=28_000)
    names = worker_names("scoring", scoring_workers)
    ports = free_port_block(scoring_workers, start=base + 100) if scoring_metrics else 0
    return Platform(
        base,
        services=services,
        workers=workers,
        replicas={"scoring": scoring_workers},
        worker_http_ports={name: ports + i for i, name in enumerate(names)} if scoring_metrics else None,
    )


def scoring_worker_metrics(platform: Platform) -> list[str]:
    """The ``/metrics`` pages of the platform's scoring workers that serve one."""
    ports = platform.worker_http_ports
    names = worker_names("scoring", platform.replicas.get("scoring", 1))
    return [f"http://127.0.0.1:{ports[name]}/metrics" for name in names if name in ports]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@contextmanager
def scratch(name: str, *, migrate: bool = True) -> Iterator[CommonSettings]:
    """A fresh scratch database (migrated, seeded) and ``bench.`` topology, removed afterwards."""
    settings = scratch_settings(name)
    asyncio.run(recreate_database(settings.asyncpg_dsn))
    try:
        if migrate:
            from sqi_cli.migrate import migrate as run_migrations

            run_migrations(settings)
        yield settings
    finally:
        try:
            asyncio.run(delete_broker_objects(settings, all_queues(), EXCHANGES))
        finally:
            asyncio.run(drop_database(settings.asyncpg_dsn))


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
