"""Scratch resources for tests and benchmarks: free ports, throw-away databases, prefixed broker objects."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from urllib.parse import urlparse

import aio_pika
import asyncpg

from shared.messaging.topology import RETRY_EXCHANGE
from shared.settings import CommonSettings, plain_dsn


def free_port_block(size: int, *, start: int = 18_000) -> int:
    """A base port with ``size`` consecutive free ports after it."""
    for base in range(start, 40_000, 10):
        if all(_free(port) for port in range(base, base + size)):
            return base
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def scratch_database_url(name: str) -> str:
    """The DSN of a test database ``name``, suffixed with ``SQI_TEST_DB_SUFFIX``.

    Two test runs on one machine (two work trees, say) set different suffixes and so never
    drop each other's databases.
    """
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}{os.environ.get('SQI_TEST_DB_SUFFIX', '')}"


def admin_dsn(dsn: str) -> str:
    """The server's maintenance database (``postgres``) under ``dsn``'s address and user."""
    return urlparse(plain_dsn(dsn))._replace(path="/postgres").geturl()


async def _admin_connection(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(admin_dsn(dsn))


async def drop_database(dsn: str) -> None:
    name = urlparse(dsn).path.lstrip("/")
    conn = await _admin_connection(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def recreate_database(dsn: str) -> None:
    """An empty database under the DSN's name (dropped first if it exists)."""
    await drop_database(dsn)
    conn = await _admin_connection(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{urlparse(dsn).path.lstrip("/")}"')
    finally:
        await conn.close()


async def delete_broker_objects(settings: CommonSettings, queues: Sequence[str], exchanges: Sequence[str]) -> None:
    """Remove what a run declared under its prefix (the broker is shared with the platform)."""
    if not settings.bus_prefix:
        raise ValueError("refusing to delete unprefixed broker objects: they may be the platform's")
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in queues:
            for name in (queue, f"{queue}.retry", f"{queue}.parking"):
                await channel.queue_delete(settings.bus_prefix + name)
        for exchange in [*exchanges, RETRY_EXCHANGE]:
            await channel.exchange_delete(settings.bus_prefix + exchange)
