"""Every schema's migrations upgrade a fresh database and match the models exactly."""

from __future__ import annotations

import asyncio

import pytest

from shared.migrations import check, upgrade
from sqi_cli.migrate import migration_dirs
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_migrations")


def test_fresh_database_upgrades_and_alembic_check_finds_nothing() -> None:
    asyncio.run(recreate_database(DB.replace("+asyncpg", "")))
    dirs = migration_dirs()
    assert {d.parent.name for d in dirs} >= {"gateway", "ingest", "scoring", "feedback", "reporting"}
    for path in dirs:
        upgrade(path, DB)
    for path in dirs:
        check(path, DB)  # raises if autogenerate would produce any operation
