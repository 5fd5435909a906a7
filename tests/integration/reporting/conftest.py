"""A fresh ``sqi_test_reporting`` database per session, migrated; handlers and app in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.reporting.api.app import create_app
from services.reporting.bootstrap import Reporting, bootstrap
from services.reporting.handlers.messages import seed_reference
from services.reporting.settings import ReportingSettings
from shared.identity import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal
from shared.messaging.topology import IncomingMessage
from shared.migrations import upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "reporting" / "migrations"
URL = scratch_database_url("sqi_test_reporting")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    asyncio.run(recreate_database(URL))
    upgrade(MIGRATIONS, URL)
    yield URL


@pytest.fixture(scope="session")
def settings(database_url: str) -> ReportingSettings:
    # Scoring is not running in these tests: the dossier drill-down must say "unavailable".
    # Pages are served fresh after every change (no stale-while-revalidate): tests read back at once.
    return ReportingSettings(
        database_url=database_url, environment="test", scoring_url="http://127.0.0.1:9", reporting_page_stale_s=0
    )


@pytest.fixture(scope="session")
async def reporting(settings: ReportingSettings) -> AsyncIterator[Reporting]:
    app = bootstrap(settings)
    async with app.uow() as uow:
        await seed_reference(settings.reference_dir, uow=uow)
    yield app
    await app.dispose()


@pytest.fixture(scope="session")
def reporting_app(reporting: Reporting) -> FastAPI:
    # httpx's ASGI transport runs no lifespan: the change listener is off, versions are read.
    return create_app(reporting, telemetry=False)


@pytest.fixture(scope="session")
async def client(reporting_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=reporting_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as c:
        yield c


def as_staff(settings: ReportingSettings, unit: str, role: str = "leader") -> dict[str, str]:
    principal = Principal(kind="staff", sub=f"{role}-{unit}", roles=(role,), unit=unit)
    return {INTERNAL_TOKEN_HEADER: settings.internal_token, PRINCIPAL_HEADER: encode_principal(principal)}


_counter = [0]


def message(routing_key: str, body: dict[str, Any]) -> IncomingMessage:
    _counter[0] += 1
    return IncomingMessage(f"test-{_counter[0]}-{datetime.now(UTC).timestamp()}", routing_key, orjson.dumps(body))
