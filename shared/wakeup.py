"""Waking LISTENers after a commit, outside the committed transaction (đánh thức sau khi ghi).

A transaction that calls ``pg_notify`` takes one lock for the whole PostgreSQL cluster when it
commits, and holds it until its commit is flushed to disk. Every transaction that wrote outbox
rows (each ingest request, each refresh that announces scores) and every reporting transaction
that bumped a read-model version used to NOTIFY in itself, so all of them committed one after
the other across every service and replica, each holding the lock through its WAL flush:
≈ 0.06–0.26 sessions waited on it at 2,000 events/s on one machine (``./sqi bench
pg-activity``, ``Lock:object`` on ``COMMIT``), and the queue grows with every replica added.

So the unit of work wakes after its commit instead: the wake is one transaction of its own,
``synchronous_commit`` off (a wake-up carries no data: the rows it points to were committed
durably first), which holds the lock for microseconds. Wakes are sent in the background and
merged while one is on its way. A wake that is lost (the process dies right after its commit, the
database is unreachable) costs latency only: the outbox relay polls, and reporting's listeners
re-read the versions on their check interval.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

log = logging.getLogger(__name__)

_AFTER_COMMIT = "sqi_wake_after_commit"  # session.info key: (channel, payload) to send after commit


def wake_after_commit(session: AsyncSession, channel: str, payload: str = "") -> None:
    """Ask the unit of work that owns ``session`` to NOTIFY ``channel`` once it has committed."""
    session.info.setdefault(_AFTER_COMMIT, set()).add((channel, payload))


def wakes_of(session: AsyncSession) -> set[tuple[str, str]]:
    """The wakes asked for in ``session``'s transaction (emptied: they are the caller's now)."""
    return session.info.pop(_AFTER_COMMIT, set())


def _literal(text: str) -> str:
    if "\x00" in text:
        raise ValueError("a NOTIFY channel or payload cannot hold NUL")
    return "'" + text.replace("'", "''") + "'"


def notify_statement(wakes: set[tuple[str, str]]) -> str:
    """One round trip (a simple query: it goes through a transaction-pooling PgBouncer as one
    transaction): the wakes, committed without waiting for the disk."""
    notifies = "; ".join(f"SELECT pg_notify({_literal(c)}, {_literal(p)})" for c, p in sorted(wakes))
    return f"BEGIN; SET LOCAL synchronous_commit TO off; {notifies}; COMMIT"


class Waker:
    """Sends the wakes of committed units of work, in the background, merged."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pending: set[tuple[str, str]] = set()
        self._sending: asyncio.Task[None] | None = None

    def wake(self, wakes: set[tuple[str, str]]) -> None:
        if not wakes:
            return
        self._pending |= wakes
        loop = asyncio.get_running_loop()
        # A task of a loop that has ended (tests run one per test) never finishes: start anew.
        if self._sending is None or self._sending.done() or self._sending.get_loop() is not loop:
            self._sending = loop.create_task(self._send())

    async def settle(self) -> None:
        """Wait until every wake asked for so far is sent (shutdown, tests)."""
        while self._sending is not None and not self._sending.done():
            await asyncio.shield(self._sending)

    async def _send(self) -> None:
        while self._pending:
            wakes, self._pending = self._pending, set()
            try:
                async with self._engine.connect() as conn:
                    raw = (await conn.get_raw_connection()).driver_connection
                    assert raw is not None
                    await raw.execute(notify_statement(wakes))
            except Exception as exc:  # a wake is a hint: listeners poll
                log.warning("wake-up not sent", extra={"channels": sorted({c for c, _ in wakes}), "error": repr(exc)})
