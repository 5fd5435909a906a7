"""What every benchmark shares: a scratch database and bus prefix, the platform, cleanup, tables."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlparse

import aio_pika
import asyncpg
import httpx

from shared.messaging.topology import RETRY_EXCHANGE
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "bench."
EXCHANGES = ("ingest.events", "scoring.events", "feedback.events", "reporting.events")
SERVICES = ("ingest", "scoring", "feedback", "reporting")


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


async def _admin_conn(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(urlparse(dsn)._replace(path="/postgres").geturl())


async def recreate_database(dsn: str) -> None:
    name = urlparse(dsn).path.lstrip("/")
    conn = await _admin_conn(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(dsn: str) -> None:
    name = urlparse(dsn).path.lstrip("/")
    conn = await _admin_conn(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_broker_objects(settings: CommonSettings, queues: Sequence[str], exchanges: Sequence[str]) -> None:
    """Remove what a benchmark declared under its prefix (the broker is shared)."""
    assert settings.bus_prefix, "refusing to delete unprefixed broker objects"
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in queues:
            for name in (queue, f"{queue}.retry", f"{queue}.parking"):
                await channel.queue_delete(settings.bus_prefix + name)
        for exchange in [*exchanges, RETRY_EXCHANGE]:
            await channel.exchange_delete(settings.bus_prefix + exchange)


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


def free_port_block(size: int) -> int:
    import socket

    for base in range(28_000, 40_000, 10):
        ok = True
        for port in range(base, base + size):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free ports")


class BenchPlatform:
    """The gateway and the chosen services (API and worker), each in its own process group."""

    def __init__(self, services: Sequence[str] = SERVICES, *, with_workers: Sequence[str] | None = None) -> None:
        self.port = free_port_block(len(SERVICES) + 1)
        self.services = tuple(services)
        self.workers = tuple(with_workers if with_workers is not None else services)
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.env = {
            **os.environ,
            **{f"SQI_{name.upper()}_URL": self.url_of(name) for name in SERVICES},
        }

    def url_of(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port + SERVICES.index(service) + 1}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)
        self.processes.append((name, process))

    def start(self) -> None:
        python = sys.executable
        uvicorn = [python, "-m", "uvicorn", "--factory", "--host", "127.0.0.1", "--log-level", "warning"]
        for name in self.services:
            if find_spec(f"services.{name}.api.app"):
                port = self.port + SERVICES.index(name) + 1
                self._spawn(f"{name}-api", [*uvicorn, "--port", str(port), f"services.{name}.api.app:create_app"])
        for name in self.workers:
            if find_spec(f"services.{name}.worker"):
                self._spawn(f"{name}-worker", [python, "-m", f"services.{name}.worker"])
        self._spawn("gateway", [*uvicorn, "--port", str(self.port), "gateway.app:create_app"])

    def wait_ready(self, seconds: float = 90) -> None:
        urls = [self.url_of(s) + "/readyz" for s in self.services] + [self.gateway + "/healthz"]
        deadline = time.monotonic() + seconds
        pending = list(urls)
        while pending and time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(pending[0], timeout=2).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        if pending:
            raise RuntimeError(f"not ready in time: {pending}")

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode}")

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes}

    def stop(self) -> None:
        import signal

        for _, process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


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
