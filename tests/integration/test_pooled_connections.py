"""A pooled connection the server closed is replaced at checkout, with no round trip per checkout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from shared.db import create_engine, driver_connection, session_factory
from shared.settings import CommonSettings
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_pooled_connections")


def test_a_terminated_pooled_connection_is_replaced_and_checkouts_cost_no_round_trip() -> None:
    async def scenario() -> None:
        await recreate_database(DB.replace("+asyncpg", ""))
        engine = create_engine(CommonSettings(database_url=DB, db_pool_size=1, db_max_overflow=0), application_name="t")
        sessions = session_factory(engine)
        admin = await asyncpg.connect(DB.replace("+asyncpg", ""))
        try:
            async with sessions() as s, s.begin():
                raw: Any = await driver_connection(s)
                first = await raw.fetchval("SELECT pg_backend_pid()")
            sent: list[str] = []
            raw.add_query_logger(lambda record: sent.append(record.query.strip().split()[0].upper()))
            for _ in range(5):  # checkouts and transactions: no ping, no no-op statement
                async with sessions() as s, s.begin():
                    await (await driver_connection(s)).fetchval("SELECT 1")
            assert sent == ["BEGIN;", "SELECT", "COMMIT;"] * 5  # no ping, no no-op before the statement
            await admin.execute("SELECT pg_terminate_backend($1)", first)
            deadline = time.monotonic() + 30
            while not raw.is_closed():  # the loop reads the server's goodbye
                assert time.monotonic() < deadline, "the terminated connection never looked closed"
                await asyncio.sleep(0.05)
            async with sessions() as s:
                second = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert second != first
        finally:
            await admin.close()
            await engine.dispose()

    asyncio.run(scenario())
