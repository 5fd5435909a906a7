"""The unit of work: one transaction for a handler's effects and the messages it publishes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar

import orjson
from opentelemetry import propagate
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.contracts import IntegrationEvent
from shared.db import driver_connection
from shared.wakeup import Waker, wake_after_commit, wakes_of


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a service's outbox relay."""
    return f"sqi_outbox_{schema}"


_FLUSH = """
INSERT INTO {table} (id, exchange, routing_key, body, trace_headers)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[]::jsonb[])
"""


_STILL_VALID = text("SELECT 1")


class UnitOfWork:
    """``async with uow:`` opens a transaction; ``publish`` adds outbox rows to it.

    Leaving the block without an exception commits, then wakes the relay (and whatever else the
    transaction asked to wake: :func:`shared.wakeup.wake_after_commit`) through ``waker``, outside
    the transaction; any exception rolls everything back, messages and wakes included. Without a
    waker (tests) the relay finds the rows at its next poll.
    """

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        outbox: Table,
        exchange: str,
        waker: Waker | None = None,
    ) -> None:
        self._factory = factory
        self._outbox = outbox
        self._exchange = exchange
        self._waker = waker
        self._pending: list[dict[str, object]] = []
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._factory()
        await self.session.begin()
        self._pending = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self._flush_outbox()
                # PostgreSQL answers the COMMIT of a transaction a failed statement aborted with
                # ROLLBACK, and neither asyncpg nor SQLAlchemy raise: a handler that caught a
                # database error without a savepoint would have its message acked, its effects
                # and inbox row gone (session 18's audit). A statement there raises instead.
                await self.session.execute(_STILL_VALID)
                await self.session.commit()
                wakes = wakes_of(self.session)
                if self._waker is not None:
                    self._waker.wake(wakes)
            else:
                await self.session.rollback()
        finally:
            await self.session.close()

    def publish(self, event: IntegrationEvent) -> None:
        self.publish_many([event])

    def publish_many(self, events: Sequence[IntegrationEvent]) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        for event in events:
            self._pending.append(
                {
                    "id": uuid.uuid4(),
                    "exchange": self._exchange,
                    "routing_key": event.routing_key,
                    "body": orjson.dumps(event.model_dump(mode="json")),
                    "trace_headers": carrier,
                }
            )

    def publish_raw(self, *, routing_key: str, body: bytes) -> None:
        """A body already in a contract's JSON shape: relays of stored payloads (replay), and
        announcements built straight from stored rows (scoring's ``scores-updated``)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        self._pending.append(
            {
                "id": uuid.uuid4(),
                "exchange": self._exchange,
                "routing_key": routing_key,
                "body": body,
                "trace_headers": carrier,
            }
        )

    async def _flush_outbox(self) -> None:
        """The pending rows in one statement; the relay is woken once they are committed."""
        if not self._pending:
            return
        rows = self._pending
        conn = await driver_connection(self.session)
        schema = self._outbox.schema or "public"
        await conn.execute(
            _FLUSH.format(table=f"{schema}.{self._outbox.name}"),
            [r["id"] for r in rows],
            [r["exchange"] for r in rows],
            [r["routing_key"] for r in rows],
            [r["body"] for r in rows],
            [orjson.dumps(r["trace_headers"]).decode() for r in rows],
        )
        wake_after_commit(self.session, outbox_channel(schema))
        self._pending = []


@dataclass
class ServiceDatabase:
    """A service's own database as its composition root holds it: the engine, the session
    factory, the waker of this process's commits, and units of work over the service's outbox.

    Each root is a subclass naming its ``OUTBOX`` table and ``EXCHANGE``."""

    OUTBOX: ClassVar[Table]
    EXCHANGE: ClassVar[str]

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    waker: Waker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.waker = Waker(self.engine)  # wakes listeners after this process's commits

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, outbox=self.OUTBOX, exchange=self.EXCHANGE, waker=self.waker)

    async def dispose(self) -> None:
        """At shutdown: the wakes of the last commits are sent before their connections go."""
        await self.waker.settle()
        await self.engine.dispose()
