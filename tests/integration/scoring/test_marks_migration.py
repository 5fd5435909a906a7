"""Migration 0020: a period's single mark becomes one row per mark, and back (merged)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrations import alembic_config, upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

from .conftest import MIGRATIONS

pytestmark = pytest.mark.integration
URL = scratch_database_url("sqi_test_scoring_marks_migration")
T1, T2 = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC)


async def marks(engine: object) -> list[tuple[str, list[datetime] | None, list[str] | None]]:
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = await conn.execute(
            text("SELECT period, accepted_at, traceparents FROM scoring.dirty_period ORDER BY period, marked_at")
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def test_marks_survive_both_ways() -> None:
    await recreate_database(URL)
    config = alembic_config(MIGRATIONS, URL)
    await asyncio.to_thread(command.upgrade, config, "0019")
    engine = create_async_engine(URL)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO scoring.dirty_period (period, accepted_at, traceparents) VALUES (:p, :a, :t)"),
                [{"p": "2026-10", "a": [T1], "t": ["00-a-01"]}, {"p": "2026", "a": None, "t": None}],
            )
        await engine.dispose()
        await asyncio.to_thread(upgrade, MIGRATIONS, URL)
        assert await marks(engine) == [("2026", None, None), ("2026-10", [T1], ["00-a-01"])]
        async with engine.begin() as conn:  # a second mark of the month: a row of its own
            await conn.execute(
                text("INSERT INTO scoring.dirty_period (period, accepted_at, traceparents) VALUES (:p, :a, :t)"),
                {"p": "2026-10", "a": [T1, T2], "t": ["00-b-01"]},
            )
        assert len(await marks(engine)) == 3
        await engine.dispose()
        await asyncio.to_thread(command.downgrade, config, "0019")
        # One row per period again: the acceptance times united, the latest mark's traces first.
        assert await marks(engine) == [("2026", None, None), ("2026-10", [T1, T2], ["00-b-01", "00-a-01"])]
    finally:
        await engine.dispose()
