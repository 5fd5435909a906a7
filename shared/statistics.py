"""Planner statistics of a service's own tables, kept current when the server does not.

Every query of SQI is planned from the tables' statistics. PostgreSQL gathers them itself
(autovacuum's analyze); a server run with ``autovacuum = off`` never does, and a table loaded
in bulk keeps "never analysed" estimates: a generic plan of a prepared lookup by
``dossier_id = ANY(…)`` then scanned the whole event table per judging chunk, growing with the
history. Operated servers (Kubernetes operators, managed PostgreSQL) run autovacuum; a
development or CI server may not. So each worker checks every minute (autovacuum's naptime),
and when autovacuum is off it does autovacuum's analyze step for its own schema: a table is
analysed once more than ``50 + 10 %`` of its rows changed since the last analysis
(autovacuum's default threshold).
One worker of a service at a time (a transaction-level advisory lock per schema).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# autovacuum_analyze_threshold + autovacuum_analyze_scale_factor × rows (the defaults)
_STALE = """
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = :schema AND s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)
ORDER BY s.relname
"""


async def analyze_stale(engine: AsyncEngine, schema: str) -> list[str]:
    """ANALYZE the tables of ``schema`` changed past the threshold, unless autovacuum runs or
    another worker of the service is at it; returns the tables analysed."""
    async with engine.begin() as conn:
        if (await conn.execute(text("SHOW autovacuum"))).scalar() == "on":
            return []
        if not (await conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:s))"), {"s": schema})).scalar():
            return []
        tables = list((await conn.execute(text(_STALE), {"schema": schema})).scalars())
        for table in tables:
            await conn.execute(text(f'ANALYZE "{schema}"."{table}"'))
    return tables


async def keep_statistics(engine: AsyncEngine, *, schema: str, stop: asyncio.Event, every_s: float = 60.0) -> None:
    """:func:`analyze_stale` every ``every_s`` until ``stop`` (says once that it has taken over)."""
    said = False
    while not stop.is_set():
        try:
            tables = await analyze_stale(engine, schema)
            if tables and not said:
                log.warning(
                    "PostgreSQL runs with autovacuum off: this worker keeps its schema's statistics",
                    extra={"schema": schema},
                )
                said = True
            if tables:
                log.info("tables analysed", extra={"schema": schema, "tables": tables})
        except Exception:
            log.exception("statistics upkeep failed; will try again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
