"""Before a command does its work: is what it needs there? One clear line when it is not.

A command that cannot reach PostgreSQL, RabbitMQ or the gateway says so in one line, naming
the address and the setting that changes it, and exits with :data:`EXIT_UNREACHABLE` — never
with a traceback, and never with a code that means something else (``./sqi recompute``'s 1
means "differences found").
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from urllib.parse import urlparse

import aio_pika
import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_UNITS = ROOT / "data" / "reference" / "units.csv"

EXIT_OK = 0
EXIT_DIFFERENCES = 1  # ./sqi recompute: the rebuilt scores differ from the live ones
EXIT_REFUSED = 2  # the command refused its input (an unknown unit, a bad option, production settings)
EXIT_UNREACHABLE = 3  # PostgreSQL, RabbitMQ or the gateway does not answer

EXIT_CODES_HELP = (
    "exit status: 0 done; 1 differences found (recompute); 2 refused input or failed step; "
    "3 PostgreSQL, RabbitMQ or the gateway unreachable"
)


class Unreachable(Exception):
    """A dependency does not answer; the message is the one line the operator sees."""


def _where(url: str, default_port: int) -> str:
    parsed = urlparse(url.replace("+asyncpg", ""))
    return f"{parsed.hostname or '127.0.0.1'}:{parsed.port or default_port}"


async def _postgres(dsn: str, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        connection = await asyncpg.connect(dsn)
        await connection.close()


def require_postgres(database_url: str, *, timeout: float = 3.0) -> None:
    where = _where(database_url, 5432)
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    try:
        asyncio.run(_postgres(dsn, timeout))
    except asyncpg.InvalidCatalogNameError as exc:
        name = urlparse(dsn).path.lstrip("/")
        raise Unreachable(f"PostgreSQL at {where} has no database {name!r} — run ./sqi migrate") from exc
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise Unreachable(f"PostgreSQL at {where} refuses the login ({exc}) — check SQI_DATABASE_URL") from exc
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unreachable(
            f"PostgreSQL at {where} does not answer — start it (./sqi up starts a local one) or set SQI_DATABASE_URL"
        ) from exc


async def _connection_room(dsn: str) -> tuple[int, int]:
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "select current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - (select count(*) from pg_stat_activity where backend_type = 'client backend') as free,"
            " current_setting('max_connections')::int as max"
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row["free"]), int(row["max"])


def connection_shortfall(database_url: str, *, needed: int) -> str | None:
    """One line when PostgreSQL has fewer free connections than ``needed``, else None.

    The platform on one machine holds about ``SQI_DB_POOL_SIZE`` connections per process; when
    PostgreSQL runs out, a process fails to start with "too many clients" deep in a log.
    """
    # The server's figure, whichever database: ask the maintenance database (ours may not exist yet).
    dsn = urlparse(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))._replace(path="/postgres")
    free, most = asyncio.run(_connection_room(dsn.geturl()))
    if free >= needed:
        return None
    return (
        f"PostgreSQL at {_where(database_url, 5432)} has {free} of its {most} connections free and the platform "
        f"needs about {needed}: raise its max_connections, stop what else holds connections, "
        "or lower SQI_DB_POOL_SIZE"
    )


async def _rabbitmq(url: str, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        connection = await aio_pika.connect(url)
        await connection.close()


def require_rabbitmq(amqp_url: str, *, timeout: float = 5.0) -> None:
    where = _where(amqp_url, 5672)
    try:
        asyncio.run(_rabbitmq(amqp_url, timeout))
    except Exception as exc:  # aio-pika raises a zoo of types for refused, reset, bad login, timeout
        raise Unreachable(
            f"RabbitMQ at {where} does not answer ({type(exc).__name__}) — start it (./sqi up starts a local one) "
            "or set SQI_AMQP_URL"
        ) from exc


def require_gateway(gateway_url: str, *, timeout: float = 5.0) -> None:
    try:
        response = httpx.get(f"{gateway_url.rstrip('/')}/healthz", timeout=timeout)
    except httpx.HTTPError as exc:
        raise Unreachable(
            f"the gateway at {gateway_url} does not answer — start the platform (./sqi up) or set SQI_GATEWAY_URL"
        ) from exc
    if response.status_code != 200:
        raise Unreachable(f"the gateway at {gateway_url} answers {response.status_code} to /healthz — see its log")


def known_units(gateway_url: str, *, timeout: float = 3.0) -> tuple[set[str], str]:
    """Unit codes and where they came from: the running platform, else the reference file."""
    try:
        response = httpx.get(f"{gateway_url.rstrip('/')}/api/v1/units", timeout=timeout)
        if response.status_code == 200:
            return {str(u["code"]) for u in response.json()}, f"the platform at {gateway_url}"
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pass
    with REFERENCE_UNITS.open(encoding="utf-8") as f:
        return {row["code"] for row in csv.DictReader(f)}, f"the reference units ({REFERENCE_UNITS.name})"


def unknown_units(codes: list[str], gateway_url: str) -> str | None:
    """None when every code names a unit; else the line that says which do not."""
    known, source = known_units(gateway_url)
    missing = [c for c in codes if c not in known]
    if not missing:
        return None
    return f"unknown unit(s) {', '.join(missing)} (checked against {source})"
