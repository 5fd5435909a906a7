"""Alembic per service: each service's version table lives in its own schema.

``env.py`` of a service calls :func:`run_migrations` with its metadata; ``./sqi migrate``
(and the Kubernetes migration Job) runs :func:`upgrade` for every service before start.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import CommonSettings


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def upgrade(migrations_dir: Path, database_url: str) -> None:
    command.upgrade(alembic_config(migrations_dir, database_url), "head")


def check(migrations_dir: Path, database_url: str) -> None:
    """Raise if autogenerate would produce anything: the models and migrations agree."""
    command.check(alembic_config(migrations_dir, database_url))


# Partitions are created by migrations and are not part of the models: never diff them.
PARTITION_NAME = re.compile(r".+_(\d{4}_\d{2}|default)$")


def run_migrations(metadata: MetaData, schema: str) -> None:
    """Body of a service's ``env.py`` (online mode only: SQI always migrates a live database)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        # Only this service's schema: never diff another service's tables.
        if type_ == "schema":
            return name == schema
        if type_ == "table" and name is not None and PARTITION_NAME.match(name):
            return False
        return True

    role_prefix = CommonSettings().migrate_role_prefix

    def do_run(connection: Connection) -> None:
        if role_prefix:  # production: the service's role owns what its migrations create
            connection.execute(text(f'SET ROLE "{role_prefix}{schema}"'))
        # Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
        # schema exists, which a service's role (owner of its schema only) does not have.
        exists = connection.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first()
        if exists is None:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(main())
