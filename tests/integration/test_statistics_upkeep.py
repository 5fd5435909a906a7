"""Where PostgreSQL runs without autovacuum, a worker keeps its own schema's statistics."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from shared.statistics import analyze_stale
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_statistics")


def test_a_bulk_loaded_table_is_analysed_once_and_only_its_schema() -> None:
    async def scenario() -> None:
        await recreate_database(DB.replace("+asyncpg", ""))
        conn = await asyncpg.connect(DB.replace("+asyncpg", ""))
        engine = create_async_engine(DB)
        try:
            if await conn.fetchval("SHOW autovacuum") == "on":
                assert await analyze_stale(engine, "mine") == []  # the server does it: nothing to do
                pytest.skip("PostgreSQL runs autovacuum here")
            loader = await asyncpg.connect(DB.replace("+asyncpg", ""))
            await loader.execute(
                """CREATE SCHEMA mine; CREATE SCHEMA theirs;
                   CREATE TABLE mine.events AS SELECT g AS id FROM generate_series(1, 5000) g;
                   CREATE TABLE mine.quiet (id int); INSERT INTO mine.quiet VALUES (1);
                   CREATE TABLE theirs.events AS SELECT g AS id FROM generate_series(1, 5000) g;"""
            )
            await loader.close()  # a backend's statistics counters are flushed when it ends (or idles 10 s)
            analysed: list[str] = []
            deadline = time.monotonic() + 30  # the statistics counters are flushed asynchronously
            while "events" not in analysed and time.monotonic() < deadline:
                analysed = await analyze_stale(engine, "mine")
                if "events" not in analysed:
                    await asyncio.sleep(0.2)
            assert analysed == ["events"]  # one row changed is below the threshold
            reltuples = await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'mine.events'::regclass")
            assert reltuples == 5000
            theirs = await conn.fetchval(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relid = 'theirs.events'::regclass"
            )
            assert theirs is None  # another service's schema is left to that service
            assert await analyze_stale(engine, "mine") == []  # analysed: not again until it changes
        finally:
            await conn.close()
            await engine.dispose()

    asyncio.run(scenario())
