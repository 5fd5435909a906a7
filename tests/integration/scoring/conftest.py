"""A fresh ``sqi_test_scoring`` database per session, migrated; handlers applied through a UoW."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from services.scoring.adapters.repository import load_procedures, load_units
from services.scoring.adapters.tables import inbox, metadata
from services.scoring.application.refresher import refresh_once
from services.scoring.application.table_copy import Reloads, TableCopy
from services.scoring.bootstrap import Scoring, bootstrap
from services.scoring.domain.calendar_cache import CachedCalendar
from services.scoring.settings import ScoringSettings
from shared.migrations import upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

from .helpers import api_reading_at_once, apply_batches, load_reference, pin_clock
from .scenario import NOW, READ_AT, dossier_events

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "scoring" / "migrations"
URL = scratch_database_url("sqi_test_scoring")
# Every table of the schema but the inbox, emptied before each test (a new table is never forgotten).
TABLES = tuple(t.name for t in metadata.sorted_tables if t is not inbox)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    asyncio.run(recreate_database(URL))
    upgrade(MIGRATIONS, URL)
    yield URL


@pytest.fixture(scope="session")
def settings(database_url: str) -> ScoringSettings:
    return ScoringSettings(database_url=database_url, environment="test")


@pytest.fixture(scope="session")
async def scoring(settings: ScoringSettings) -> AsyncIterator[Scoring]:
    app = bootstrap(settings)
    yield app
    await app.dispose()


@pytest.fixture
async def clean(scoring: Scoring) -> Scoring:
    async with scoring.uow() as uow:
        await uow.session.execute(text("TRUNCATE " + ", ".join(f"scoring.{t}" for t in TABLES)))
    scoring.calendar = CachedCalendar()
    scoring.calendar_days = None
    scoring.synced = Reloads("methodologies and calendar")  # the API checks the emptied tables
    scoring.units = TableCopy(load_units)  # the API reads the emptied tables afresh
    scoring.procedures = TableCopy(load_procedures)
    scoring.judging_step = None  # its row went with the tables (else its next step re-judges all)
    return scoring


@pytest.fixture
async def new_pod(clean: Scoring, settings: ScoringSettings) -> AsyncIterator[Callable[[], Scoring]]:
    """Fresh compositions, as a new pod (or a second worker) has: nothing of another's memory."""
    apps: list[Scoring] = []

    def start() -> Scoring:
        apps.append(bootstrap(settings))
        return apps[-1]

    yield start
    for app in apps:
        await app.dispose()


@pytest.fixture
async def client(clean: Scoring) -> AsyncIterator[httpx.AsyncClient]:
    """The scoring API over the scenario's October, scored, read at ``READ_AT`` (a module may define
    its own)."""
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    assert "2026-10" in await refresh_once(clean, now=NOW)
    transport = httpx.ASGITransport(app=pin_clock(api_reading_at_once(clean), READ_AT), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as c:
        yield c
