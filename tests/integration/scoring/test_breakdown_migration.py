"""Migration 0019: payloads stored with the full breakdown (the words included) become the figures
that the current code stores, value for value."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from alembic import command

from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import bootstrap
from services.scoring.domain import breakdown
from services.scoring.settings import ScoringSettings
from shared.db import driver_connection
from shared.migrations import alembic_config, upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

from .conftest import MIGRATIONS
from .helpers import apply_batches, load_reference, score_table
from .scenario import NOW, dossier_events

pytestmark = pytest.mark.integration
URL = scratch_database_url("sqi_test_scoring_breakdown_migration")


async def test_full_breakdowns_become_their_figures(settings: ScoringSettings) -> None:
    await recreate_database(URL)
    await asyncio.to_thread(upgrade, MIGRATIONS, URL)
    app = bootstrap(settings.model_copy(update={"database_url": URL}))
    try:
        await load_reference(app, NOW)
        await apply_batches(app, [dossier_events()], NOW)
        await refresh_once(app, now=NOW)
        figures = await score_table(app, "2026-10")
        assert len(figures) >= 6
        # What the code before 0019 stored: the breakdown as shown (test_breakdown proves the two equal).
        shown = {k: breakdown.shown(r["payload"], app.methodologies[k[0]], r["grade"]) for k, r in figures.items()}
        async with app.uow() as uow:
            conn = await driver_connection(uow.session)
            await conn.executemany(
                "UPDATE scoring.score SET payload = $3::jsonb WHERE methodology = $1 AND period = '2026-10' "
                "AND unit_code = $2",
                [(m, code, orjson.dumps(payload).decode()) for (m, code), payload in shown.items()],
            )
        full = await score_table(app, "2026-10")
        assert all(isinstance(r["payload"]["groups"][0], dict) for r in full.values())
        await app.dispose()  # no pooled connection (nor cached statement) across the DDL
        await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS, URL), "0018")
        await asyncio.to_thread(upgrade, MIGRATIONS, URL)

        after = await score_table(app, "2026-10")
        assert {k: r["payload"] for k, r in after.items()} == {k: r["payload"] for k, r in figures.items()}
    finally:
        await app.dispose()
