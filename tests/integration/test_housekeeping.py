"""Old published outbox rows and old inbox rows are purged; pending and recent ones stay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.adapters.tables import inbox, outbox
from shared.messaging.housekeeping import PLANNED_NOW, purge_once, purge_statements
from shared.migrations import upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

from .plans import node_loops

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_housekeeping")


def _migrated() -> None:
    asyncio.run(recreate_database(DB.replace("+asyncpg", "")))
    upgrade(Path(__file__).resolve().parents[2] / "services/ingest/migrations", DB)


def test_purge_keeps_pending_and_recent_rows() -> None:
    _migrated()

    async def scenario() -> tuple[int, list[str], list[str]]:
        conn = await asyncpg.connect(DB.replace("+asyncpg", ""))
        await conn.execute(
            """INSERT INTO ingest.outbox (id, exchange, routing_key, body, created_at, published_at) VALUES
               (gen_random_uuid(), 'x', 'old-published', '', now() - interval '9 days', now() - interval '9 days'),
               (gen_random_uuid(), 'x', 'old-pending', '', now() - interval '9 days', NULL),
               (gen_random_uuid(), 'x', 'recent-published', '', now(), now());
               INSERT INTO ingest.inbox (consumer, message_id, received_at) VALUES
               ('c', 'old', now() - interval '9 days'), ('c', 'recent', now())"""
        )
        engine = create_async_engine(DB)
        deleted = await purge_once(engine, outbox=outbox, inbox=inbox, keep=timedelta(days=7))
        await engine.dispose()
        left_out = [r["routing_key"] for r in await conn.fetch("SELECT routing_key FROM ingest.outbox ORDER BY 1")]
        left_in = [r["message_id"] for r in await conn.fetch("SELECT message_id FROM ingest.inbox ORDER BY 1")]
        await conn.close()
        return deleted, left_out, left_in

    deleted, left_out, left_in = asyncio.run(scenario())
    assert deleted == 2
    assert left_out == ["old-pending", "recent-published"]
    assert left_in == ["recent"]


def test_a_purge_is_planned_for_the_table_as_it_is_when_it_runs() -> None:
    """Session 12: a prepared statement's generic plan made while the inbox was empty ran the
    purge's ``LIMIT`` sub-select once per row (86 s for 20,000 old rows). Planned when it runs,
    the purge of 3,000 rows runs each node of its plan once."""
    _migrated()

    async def scenario() -> tuple[list[tuple[str, int]], int]:
        conn = await asyncpg.connect(DB.replace("+asyncpg", ""))
        try:
            purge = purge_statements(outbox=outbox, inbox=inbox)[1].replace(":keep", "$1").replace(":chunk", "$2")
            await conn.execute("VACUUM ANALYZE ingest.inbox")  # empty: no pages
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE purge(interval, int) AS {purge}")
            await conn.execute("EXECUTE purge('7 days', 5000)")  # the generic plan, made on the empty table
            await conn.execute(
                "INSERT INTO ingest.inbox (consumer, message_id, received_at)"
                " SELECT 'c', 'm' || g, now() - interval '9 days' FROM generate_series(1, 3000) g"
            )
            async with conn.transaction():
                await conn.execute(PLANNED_NOW)
                explained = await conn.fetchval(
                    "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE purge('7 days', 5000)"
                )
            return node_loops(explained), await conn.fetchval("SELECT count(*) FROM ingest.inbox")
        finally:
            await conn.close()

    loops, left = asyncio.run(scenario())
    assert all(n <= 1 for _, n in loops), loops
    assert left == 0
