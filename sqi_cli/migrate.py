"""``./sqi migrate``: the step before start — schemas, broker topology, reference data."""

from __future__ import annotations

import asyncio
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

import aio_pika

from shared.messaging.topology import Subscription, declare_subscription
from shared.migrations import upgrade
from shared.settings import CommonSettings
from sqi_cli.infra import ensure_database

ROOT = Path(__file__).resolve().parents[1]
# Order matters only for readability: each service migrates its own schema.
COMPONENTS = ("gateway", "services.ingest", "services.scoring", "services.feedback", "services.reporting")


def migration_dirs() -> list[Path]:
    dirs = []
    for component in COMPONENTS:
        path = ROOT.joinpath(*component.split("."), "migrations")
        if (path / "env.py").exists():
            dirs.append(path)
    return dirs


def subscriptions() -> list[Subscription]:
    """Every service's subscriptions, declared before anything publishes (no message is lost)."""
    subs: list[Subscription] = []
    for component in COMPONENTS:
        module_name = f"{component}.subscriptions"
        if find_spec(component) and find_spec(module_name):
            subs += import_module(module_name).SUBSCRIPTIONS
    return subs


async def declare_topology(settings: CommonSettings) -> None:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for sub in subscriptions():
            await declare_subscription(channel, sub, prefix=settings.bus_prefix)


async def seed_reference(settings: CommonSettings) -> None:
    from services.ingest.seed import reference_app, seed

    ingest = reference_app()
    try:
        await seed(ingest)
    finally:
        await ingest.dispose()


def migrate(settings: CommonSettings | None = None) -> None:
    settings = settings or CommonSettings()
    asyncio.run(ensure_database(settings.asyncpg_dsn))
    for path in migration_dirs():
        upgrade(path, settings.database_url)
    asyncio.run(declare_topology(settings))
    asyncio.run(seed_reference(settings))
