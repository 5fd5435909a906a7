"""Async SQLAlchemy engine and sessions; one schema per service, never another's."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import orjson
from sqlalchemy import MetaData, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared.settings import CommonSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

# A transaction PostgreSQL aborted because of another one (a deadlock it broke, a serialisation
# conflict): the same work run again succeeds.
TRANSIENT_CONFLICTS = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)

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


def json_text(value: Any) -> str:
    """A JSON / JSONB parameter as text: orjson (≈ 10× the standard library; a scoring refresh
    writes ~800 score payloads), the standard library for what orjson refuses (integers beyond
    64 bits). Reading stays with the standard library: orjson would read such an integer back
    as a float, silently."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def create_engine(settings: CommonSettings, *, application_name: str) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        json_serializer=json_text,
        connect_args={"server_settings": {"application_name": application_name}},
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, a terminated backend, an idle
    timeout) is replaced at checkout, without a round trip.

    SQLAlchemy's ``pool_pre_ping`` would ask the server instead — with asyncpg that is BEGIN,
    ``;`` and ROLLBACK, three round trips per checkout, and on this kind of machine a round trip
    costs ≈ 100 µs of client CPU besides the server's: with every consumer transaction and every
    request paying it, a tenth of a core at a live stream's rates. asyncpg learns of a closed
    socket as soon as the event loop reads its end, so ``is_closed()`` answers from memory; a
    connection that dies unnoticed (a silent network) fails its statement, which invalidates the
    pool, and the work is retried (a consumer's message) or answered 503 (a request).
    """
    raw = getattr(dbapi_connection, "driver_connection", None)
    if raw is not None and raw.is_closed():
        raise sa_exc.DisconnectionError("connection closed by the server")


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
    in autocommit, outside the unit of work, and survive a rollback: the adapter's BEGIN goes
    first (one round trip; a no-op statement only if the adapter has no such method).
    """
    conn = await session.connection()
    adapted: Any = (await conn.get_raw_connection()).dbapi_connection
    raw: Any = adapted.driver_connection
    if not raw.is_in_transaction():
        begin = getattr(adapted, "_start_transaction", None)
        if begin is not None:
            await begin()
        if not raw.is_in_transaction():
            await session.execute(text("SELECT 1"))
    return raw


def caused_by(exc: BaseException, test: Callable[[BaseException], bool]) -> bool:
    """Whether ``exc`` or an error behind it passes ``test``, looking through SQLAlchemy's wrappers
    (``.orig``) and the driver's re-raises (``raise … from``). Not ``__context__``: an error
    raised while handling a caught one is a different error."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        e = pending.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if test(e):
            return True
        pending += [getattr(e, "orig", None), e.__cause__]
    return False


# The database is not there (down, restarting, failing over, the connection cut): nothing a
# message did. Not a statement timeout (class 57 too), which a message can cause.
_UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
)


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached, rather than refused the work."""
    return caused_by(
        exc,
        lambda e: isinstance(e, _UNREACHABLE) or (isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated),
    )


def transient_conflict(exc: BaseException) -> bool:
    return caused_by(exc, lambda e: isinstance(e, TRANSIENT_CONFLICTS))


async def retrying_conflicts(work: Callable[[], Awaitable[T]], *, attempts: int = 3) -> T:
    """Run ``work`` (a whole transaction) again when PostgreSQL aborted it for a transient conflict."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except Exception as exc:
            if attempt == attempts or not transient_conflict(exc):
                raise
            log.warning("transaction aborted by a conflict; running it again", extra={"attempt": attempt})
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
