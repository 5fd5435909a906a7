"""Migration 0017: contributions judged before feedback was part of the verdict, with ratings and
petitions stored meanwhile, become exact once the migration's flagged dossiers are judged.

Rows judged by the session-5 code carry bit 18 = 0 and ``unit_tally`` had no
``on_time_excepted``: here the dossiers are judged first and the ratings and petitions stored
afterwards by SQL (as the old consumer stored them: rows, their months dirty, no dossier
flagged), the schema taken back to 0016 and upgraded again. The migration flags every dossier
ever rated dissatisfied or named in a petition; one refresh judges them, and the counters equal
the sums over the contributions and the scores a from-scratch recompute.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import orjson
import pytest
from alembic import command
from sqlalchemy import select

from services.scoring.adapters.dirty_periods import mark_scored_periods
from services.scoring.adapters.tables import dossier
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import bootstrap
from services.scoring.domain import breakdown
from services.scoring.settings import ScoringSettings
from shared.calendar import VN_TZ
from shared.db import driver_connection
from shared.migrations import alembic_config, upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

from .conftest import MIGRATIONS
from .helpers import apply_batches, load_reference, no_differences, score_table
from .scenario import NOW, dossier_events
from .test_petition_bound import petition

pytestmark = pytest.mark.integration
URL = scratch_database_url("sqi_test_scoring_feedback_migration")


def oct_(day: int) -> datetime:
    return datetime(2026, 10, day, 9, tzinfo=VN_TZ)


async def test_rows_judged_before_the_migration_become_exact(settings: ScoringSettings) -> None:
    await recreate_database(URL)
    await asyncio.to_thread(upgrade, MIGRATIONS, URL)
    app = bootstrap(settings.model_copy(update={"database_url": URL}))
    events = dossier_events()
    try:
        await load_reference(app, NOW)
        await apply_batches(app, [events], NOW)
        await refresh_once(app, now=NOW)
        async with app.uow() as uow:
            conn = await driver_connection(uow.session)
            await conn.executemany(
                "INSERT INTO scoring.rating (dossier_id, rating_id, level, criteria, rated_at) "
                "VALUES ($1, $2, $3, '{}'::jsonb, $4)",
                [
                    ("B1", "r1", "dissatisfied", oct_(10)),  # excepted in October
                    ("A1", "r2", "dissatisfied", oct_(9)),  # then satisfied again
                    ("A1", "r3", "satisfied", oct_(12)),
                    ("A3", "r4", "dissatisfied", oct_(9)),
                ],
            )
            named = petition(7, oct_(20), None, dossier_id="B2").model_dump(mode="json")
            await conn.execute(
                "INSERT INTO scoring.petition (petition_id, version, unit_code, received_at, data) "
                "VALUES ($1, 1, 'P01', $2, $3::jsonb)",
                named["petition_id"],
                oct_(20),
                orjson.dumps(named).decode(),
            )
            await mark_scored_periods(uow.session)  # as the old consumer marked their months
        await app.dispose()  # no pooled connection (nor cached statement) across the DDL
        await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS, URL), "0016")
        await asyncio.to_thread(upgrade, MIGRATIONS, URL)

        async with app.sessions() as s:
            flagged = dict(
                (await s.execute(select(dossier.c.dossier_id, dossier.c.recheck_at).where(dossier.c.recheck_at < NOW)))
                .tuples()
                .all()
            )
        assert flagged == {"A1": oct_(9), "A3": oct_(9), "B1": oct_(10), "B2": oct_(20)}
        await refresh_once(app, now=NOW)
        p02 = (await score_table(app, "2026-10"))[("tax-2025", "P02")]
        ind = next(i for i in breakdown.indicator_figures(p02["payload"]) if i["id"] == "5.4")
        assert (ind["numerator"], ind["denominator"]) == (0, 2)  # B1 rated dissatisfied, B2 petitioned
        await no_differences(app, events)
    finally:
        await app.dispose()
