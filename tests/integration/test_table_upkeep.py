"""Where PostgreSQL runs without autovacuum, a worker vacuums and analyses its own schema."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from shared.table_upkeep import upkeep_once
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_table_upkeep")


def test_bulk_loaded_and_churned_tables_are_kept_and_only_in_their_schema() -> None:
    async def scenario() -> None:
        await recreate_database(DB.replace("+asyncpg", ""))
        conn = await asyncpg.connect(DB.replace("+asyncpg", ""))
        engine = create_async_engine(DB)

        async def upkeep_until(expected: list[str]) -> list[str]:
            done: list[str] = []
            deadline = time.monotonic() + 30  # the statistics counters are flushed asynchronously
            while done != expected and time.monotonic() < deadline:
                done = await upkeep_once(engine, "mine")
                if done != expected:
                    await asyncio.sleep(0.2)
            return done

        async def stat(column: str, table: str) -> object:
            return await conn.fetchval(f"SELECT {column} FROM pg_stat_user_tables WHERE relid = $1::regclass", table)

        async def load(sql: str) -> None:
            loader = await asyncpg.connect(DB.replace("+asyncpg", ""))
            await loader.execute(sql)
            await loader.close()  # a backend's statistics counters are flushed when it ends (or idles 10 s)

        try:
            if await conn.fetchval("SHOW autovacuum") == "on":
                assert await upkeep_once(engine, "mine") == []  # the server does it: nothing to do
                pytest.skip("PostgreSQL runs autovacuum here")
            await load(
                """CREATE SCHEMA mine; CREATE SCHEMA theirs;
                   CREATE TABLE mine.events AS SELECT g AS id FROM generate_series(1, 5000) g;
                   CREATE TABLE mine.quiet (id int); INSERT INTO mine.quiet VALUES (1);
                   CREATE TABLE theirs.events AS SELECT g AS id FROM generate_series(1, 5000) g;"""
            )
            assert await upkeep_until(["events: analyze"]) == ["events: analyze"]  # one row is below the threshold
            assert await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'mine.events'::regclass") == 5000
            theirs = await conn.fetchval(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relid = 'theirs.events'::regclass"
            )
            assert theirs is None  # another service's schema is left to that service
            assert await upkeep_once(engine, "mine") == []  # done: not again until it changes

            await load("UPDATE mine.events SET id = id + 1 WHERE id <= 2000")  # 2,000 dead rows, 40 %
            assert await upkeep_until(["events: vacuum + analyze"]) == ["events: vacuum + analyze"]
            vacuumed = await conn.fetchval(
                "SELECT last_vacuum FROM pg_stat_user_tables WHERE relid = 'mine.events'::regclass"
            )
            assert vacuumed is not None
        finally:
            await conn.close()
            await engine.dispose()

    asyncio.run(scenario())
