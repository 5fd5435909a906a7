"""Helpers the integration and end-to-end tests share."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlparse

import aio_pika
import asyncpg

from shared.messaging.topology import RETRY_EXCHANGE
from shared.settings import CommonSettings


def free_port_block(size: int) -> int:
    """A base port with ``size`` consecutive free ports after it."""
    for base in range(18_000, 40_000, 10):
        ok = True
        for port in range(base, base + size):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free ports")


async def recreate_database(dsn: str) -> None:
    parsed = urlparse(dsn)
    name = parsed.path.lstrip("/")
    conn = await asyncpg.connect(parsed._replace(path="/postgres").geturl())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def delete_broker_objects(settings: CommonSettings, queues: list[str], exchanges: list[str]) -> None:
    """Remove what a test run declared under its prefix (the broker is shared)."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        prefix = settings.bus_prefix
        for queue in queues:
            for name in (queue, f"{queue}.retry", f"{queue}.parking"):
                await channel.queue_delete(prefix + name)
        for exchange in [*exchanges, RETRY_EXCHANGE]:
            await channel.exchange_delete(prefix + exchange)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
