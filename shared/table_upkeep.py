"""Vacuum and planner statistics of a service's own tables, kept up when the server does not.

PostgreSQL's autovacuum removes dead row versions (VACUUM) and gathers the statistics every
query is planned from (ANALYZE). A server run with ``autovacuum = off`` does neither: tables
loaded in bulk keep "never analysed" estimates (a prepared lookup by ``dossier_id = ANY(…)`` was
planned as a scan of the whole event table per judging chunk), and tables updated under a
stream only grow (``scoring.dossier``: 100 MB for 50,000 rows after one judging). Operated
servers (Kubernetes operators, managed PostgreSQL) run autovacuum; a development or CI server
may not. So each worker checks every minute (autovacuum's naptime) and, only when autovacuum
is off, does autovacuum's work for its own schema with autovacuum's default thresholds: VACUUM
a table once its dead rows pass ``50 + 20 %`` of its rows, ANALYZE it once its changes since
the last analysis pass ``50 + 10 %`` — throttled as autovacuum is (``vacuum_cost_delay`` 2 ms),
one worker of a service at a time (an advisory lock per schema).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.periodic import run_every

log = logging.getLogger(__name__)

# autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor × rows, and the analyze pair
_DUE = """
SELECT relname, to_vacuum, to_analyze FROM (
    SELECT s.relname,
           s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0) AS to_vacuum,
           s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0) AS to_analyze
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = :schema
) t WHERE to_vacuum OR to_analyze ORDER BY relname
"""


async def upkeep_once(engine: AsyncEngine, schema: str) -> list[str]:
    """VACUUM / ANALYZE the tables of ``schema`` past autovacuum's thresholds, unless autovacuum
    runs or another worker of the service is at it; returns what was done (``table: vacuum``)."""
    done: list[str] = []
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")  # VACUUM runs outside a transaction
        if (await conn.execute(text("SHOW autovacuum"))).scalar() == "on":
            return done
        if not (await conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:s))"), {"s": schema})).scalar():
            return done
        try:
            await conn.execute(text("SET vacuum_cost_delay = '2ms'"))
            for table, vacuum, analyze in (await conn.execute(text(_DUE), {"schema": schema})).all():
                what = "VACUUM (ANALYZE)" if vacuum and analyze else "VACUUM" if vacuum else "ANALYZE"
                await conn.execute(text(f'{what} "{schema}"."{table}"'))
                done.append(f"{table}: {what.split(' ')[0].lower()}{' + analyze' if vacuum and analyze else ''}")
        finally:
            await conn.execute(text("RESET vacuum_cost_delay"))
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:s))"), {"s": schema})
    return done


async def keep_tables(engine: AsyncEngine, *, schema: str, stop: asyncio.Event, every_s: float = 60.0) -> None:
    """:func:`upkeep_once` every ``every_s`` until ``stop`` (says once that it has taken over)."""
    said = False

    async def upkeep() -> None:
        nonlocal said
        done = await upkeep_once(engine, schema)
        if done and not said:
            log.warning(
                "PostgreSQL runs with autovacuum off: this worker vacuums and analyses its schema",
                extra={"schema": schema},
            )
            said = True
        if done:
            log.info("tables vacuumed or analysed", extra={"schema": schema, "tables": done})

    await run_every(every_s, upkeep, stop=stop, name="table upkeep")
