"""A fresh ``sqi_test_ingest`` database per session, migrated and seeded; the app driven in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.ingest.api.app import create_app
from services.ingest.bootstrap import Ingest, bootstrap
from services.ingest.handlers import IngestResult, ingest_events
from services.ingest.seed import seed
from services.ingest.settings import IngestSettings
from shared.identity import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal
from shared.migrations import upgrade
from shared.unit_of_work import UnitOfWork
from sqi_cli.scratch import recreate_database, scratch_database_url

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "ingest" / "migrations"
URL = scratch_database_url("sqi_test_ingest")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    asyncio.run(recreate_database(URL))
    upgrade(MIGRATIONS, URL)
    yield URL


@pytest.fixture(scope="session")
def settings(database_url: str) -> IngestSettings:
    return IngestSettings(database_url=database_url, environment="test")


@pytest.fixture(scope="session")
async def ingest(settings: IngestSettings) -> AsyncIterator[Ingest]:
    app = bootstrap(settings)
    await seed(app)
    yield app
    await app.dispose()


@pytest.fixture(scope="session")
async def client(ingest: Ingest) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ingest)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as c:
        yield c


def integrator(source: str, *units: str) -> Principal:
    return Principal(kind="integrator", sub=f"key-{source}", source=source, units=units)


async def ingest_records(
    ingest: Ingest, records: list[dict[str, Any]], uow: UnitOfWork, *, source: str, units: tuple[str, ...] = ("P01",)
) -> IngestResult:
    """``records`` through the ingest handler in ``uow``, as the integrator ``source`` for ``units``
    (the reference data read afresh: the route asks the cache for the codes a request names)."""
    await ingest.reference.reload()
    return await ingest_events(
        records,
        principal=integrator(source, *units),
        uow=uow,
        reference=await ingest.reference.get(),
        rating_codes=ingest.rating_codes,
        now=datetime.now(UTC),
    )


def admin() -> Principal:
    return Principal(kind="staff", sub="admin-1", roles=("admin",), unit="CT")


def headers(settings: IngestSettings, principal: Principal | None = None) -> dict[str, str]:
    """What the gateway adds: the verified principal and its internal token."""
    out = {INTERNAL_TOKEN_HEADER: settings.internal_token}
    if principal is not None:
        out[PRINCIPAL_HEADER] = encode_principal(principal)
    return out


def new_id(prefix: str = "HS") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"


def received(
    source: str,
    dossier_id: str,
    *,
    unit: str = "P01",
    at: str = "2026-10-05T08:31:00+07:00",
    event_id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"{dossier_id}:rcv",
        "type": "dossier.received",
        "occurred_at": at,
        "source": source,
        "data": {
            "dossier_id": dossier_id,
            "procedure_code": "T.DKT.01",
            "unit_code": unit,
            "due_at": None,
            "channel": "online",
            "online_level": "full",
            "applicant_type": "citizen",
            **data,
        },
    }


def procedure_upsert(source: str, code: str, **data: Any) -> dict[str, Any]:
    """A ``procedure.upserted`` of a provincial procedure ``code`` (``data`` overrides or adds fields)."""
    return {
        "event_id": f"{code}:upsert",
        "type": "procedure.upserted",
        "occurred_at": "2026-10-01T08:00:00+07:00",
        "source": source,
        "data": {
            "procedure_code": code,
            "name": "Thủ tục kiểm tra",
            "field": "Đăng ký thuế",
            "levels": ["province"],
            "time_limit_wd": 3,
            "online_level_offered": "full",
            "has_fee": False,
            "returns_document": True,
            "target": "both",
            "complete_listing": True,
            "publicized_at": None,
            **data,
        },
    }


def lifecycle(
    source: str, dossier_id: str, kind: str, *, at: str = "2026-10-06T08:31:00+07:00", **data: Any
) -> dict[str, Any]:
    return {
        "event_id": f"{dossier_id}:{kind}:{at}",
        "type": f"dossier.{kind}",
        "occurred_at": at,
        "source": source,
        "data": {"dossier_id": dossier_id, **data},
    }


async def sql(ingest: Ingest, statement: str, **params: Any) -> list[Any]:
    async with ingest.uow() as uow:
        result = await uow.session.execute(text(statement), params)
        return list(result.all()) if getattr(result, "returns_rows", False) else []
