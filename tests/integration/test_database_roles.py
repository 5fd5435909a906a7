"""The per-service database roles are real privilege boundaries (production's roles.sql, for real).

Real PostgreSQL. The test applies ``k8s/overlays/production/data/roles.sql`` to a scratch
database as CloudNativePG would (with this run's role names, since roles are server-wide), gives
the roles LOGIN as the Cluster's managed roles do, then runs every service's migrations as the
database owner with ``SQI_MIGRATE_ROLE_PREFIX``, as the migration Job does. It checks that every
table belongs to its service's role, and that a service's role can use its own schema but can
neither read another service's tables nor create anything outside its schema.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.migrations import upgrade
from sqi_cli.migrate import migration_dirs
from sqi_cli.scratch import drop_database, recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ROLES_SQL = ROOT / "k8s" / "overlays" / "production" / "data" / "roles.sql"
DB = scratch_database_url("sqi_test_roles")
DSN = DB.replace("+asyncpg", "")
DATABASE = DSN.rsplit("/", 1)[1].split("?")[0]
PREFIX = "sqit" + re.sub(r"[^a-z0-9_]", "", os.environ.get("SQI_TEST_DB_SUFFIX", "").lower()) + "_"
SCHEMAS = sorted(re.findall(r"CREATE SCHEMA (\w+) AUTHORIZATION", ROLES_SQL.read_text()))
ROLES = [f"{PREFIX}{s}" for s in SCHEMAS] + [f"{PREFIX}owner"]


def as_role(dsn: str, role: str) -> str:
    return dsn.replace("://postgres@", f"://{role}@", 1)


async def drop_roles(conn: asyncpg.Connection) -> None:
    for role in ROLES:
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def roles_database() -> Iterator[None]:
    admin = DSN.rsplit("/", 1)[0] + "/postgres"

    async def prepare() -> None:
        await drop_database(DSN)
        conn = await asyncpg.connect(admin)
        try:
            await drop_roles(conn)
            await conn.execute(f'CREATE ROLE "{PREFIX}owner" LOGIN')  # CloudNativePG: initdb owner
        finally:
            await conn.close()
        await recreate_database(DSN)
        conn = await asyncpg.connect(DSN)
        try:
            await conn.execute(f'ALTER DATABASE "{DATABASE}" OWNER TO "{PREFIX}owner"')
            sql = ROLES_SQL.read_text().replace("sqi_", PREFIX).replace(" DATABASE sqi ", f' DATABASE "{DATABASE}" ')
            await conn.execute(sql)
            for schema in SCHEMAS:  # what the Cluster's managed roles do
                await conn.execute(f'ALTER ROLE "{PREFIX}{schema}" LOGIN')
        finally:
            await conn.close()

    async def cleanup() -> None:
        await drop_database(DSN)
        conn = await asyncpg.connect(admin)
        try:
            await drop_roles(conn)
        finally:
            await conn.close()

    asyncio.run(prepare())
    yield
    asyncio.run(cleanup())


async def fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


def test_each_service_role_owns_its_schema_and_reads_no_other(roles_database, monkeypatch) -> None:
    monkeypatch.setenv("SQI_MIGRATE_ROLE_PREFIX", PREFIX)
    owner_url = as_role(DB, f"{PREFIX}owner")
    for path in migration_dirs():
        upgrade(path, owner_url)

    tables = asyncio.run(
        fetch(DSN, f"SELECT schemaname, tablename, tableowner FROM pg_tables WHERE schemaname IN {tuple(SCHEMAS)}")
    )
    migrated = {t["schemaname"] for t in tables}
    assert {p.parent.name for p in migration_dirs()} <= migrated
    wrong = [
        (t["schemaname"], t["tablename"], t["tableowner"])
        for t in tables
        if t["tableowner"] != PREFIX + t["schemaname"]
    ]
    assert not wrong, f"tables not owned by their service's role: {wrong[:5]}"

    first = {t["schemaname"]: t["tablename"] for t in tables}
    ingest, scoring = as_role(DSN, f"{PREFIX}ingest"), as_role(DSN, f"{PREFIX}scoring")
    # Its own schema: yes.
    asyncio.run(fetch(ingest, f'SELECT count(*) FROM ingest."{first["ingest"]}"'))
    asyncio.run(fetch(scoring, f'SELECT count(*) FROM scoring."{first["scoring"]}"'))
    # Another service's schema: no.
    for dsn, other in ((ingest, "scoring"), (scoring, "ingest"), (ingest, "feedback"), (scoring, "gateway")):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            asyncio.run(fetch(dsn, f'SELECT count(*) FROM {other}."{first[other]}"'))
    # Nothing outside its own schema.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(fetch(ingest, "CREATE TABLE public.sneaky (x int)"))
