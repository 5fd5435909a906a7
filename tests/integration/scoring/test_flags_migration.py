"""Migration 0022: a dossier's single flag becomes one row per flag, and back (merged); a flagged
dossier without a row gets one (judging only updates rows from now on)."""

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
URL = scratch_database_url("sqi_test_scoring_flags_migration")
T1, T2 = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC)
INSERT = "INSERT INTO scoring.dossier_flag (dossier_id, accepted_at, traceparent) VALUES (:d, :a, :t)"


async def flags(engine: object) -> list[tuple[str, datetime | None, str | None]]:
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = await conn.execute(text("SELECT dossier_id, accepted_at, traceparent FROM scoring.dossier_flag"))
        return sorted((r[0], r[1], r[2]) for r in rows)


async def test_flags_survive_both_ways() -> None:
    await recreate_database(URL)
    config = alembic_config(MIGRATIONS, URL)
    await asyncio.to_thread(command.upgrade, config, "0021")
    engine = create_async_engine(URL)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(INSERT), [{"d": "HS-1", "a": T2, "t": "00-a-01"}, {"d": "HS-2", "a": None, "t": None}]
            )
        await engine.dispose()
        await asyncio.to_thread(upgrade, MIGRATIONS, URL)
        assert await flags(engine) == [("HS-1", T2, "00-a-01"), ("HS-2", None, None)]
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT dossier_id FROM scoring.dossier ORDER BY 1"))
            assert rows.scalars().all() == ["HS-1", "HS-2"]
        async with engine.begin() as conn:  # a second flag of HS-1: a row of its own
            await conn.execute(text(INSERT), {"d": "HS-1", "a": T1, "t": "00-b-01"})
        assert len(await flags(engine)) == 3
        await engine.dispose()
        await asyncio.to_thread(command.downgrade, config, "0021")
        # One row per dossier again: the earliest acceptance, the latest flag's trace.
        assert await flags(engine) == [("HS-1", T1, "00-b-01"), ("HS-2", None, None)]
    finally:
        await engine.dispose()
