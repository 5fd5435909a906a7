"""Async SQLAlchemy engine and sessions; one schema per service, never another's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared.settings import CommonSettings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """The MetaData of one service: every table lives in the service's own schema."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def create_engine(settings: CommonSettings, *, application_name: str) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": application_name}},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on any exception."""
    async with factory() as session, session.begin():
        yield session


async def database_ready(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select 1"))
        return True
    except Exception:
        return False


async def driver_connection(session: AsyncSession) -> Any:
    """The session's asyncpg ``Connection``, inside the session's open transaction.

    The one way to reach the driver (COPY, array binds). SQLAlchemy's asyncpg adapter begins
    its transaction lazily on the first statement, so a raw statement sent before it would run
    in autocommit, outside the unit of work, and survive a rollback: a no-op goes first.
    """
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).driver_connection
    if not raw.is_in_transaction():
        await session.execute(text("SELECT 1"))
    return raw
