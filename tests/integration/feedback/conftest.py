"""A fresh ``sqi_test_feedback`` database per session, migrated; the app driven in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from services.feedback.adapters.tables import outbox
from services.feedback.api.app import create_app
from services.feedback.bootstrap import Feedback, bootstrap
from services.feedback.handlers.messages import seed_reference_units
from services.feedback.settings import FeedbackSettings
from shared.identity import CLIENT_ADDRESS_HEADER, INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal
from shared.migrations import upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "feedback" / "migrations"
URL = scratch_database_url("sqi_test_feedback")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    asyncio.run(recreate_database(URL))
    upgrade(MIGRATIONS, URL)
    yield URL


@pytest.fixture(scope="session")
def settings(database_url: str) -> FeedbackSettings:
    return FeedbackSettings(database_url=database_url, environment="test")


@pytest.fixture(scope="session")
async def feedback(settings: FeedbackSettings) -> AsyncIterator[Feedback]:
    app = bootstrap(settings)
    async with app.uow() as uow:
        await seed_reference_units(settings.reference_dir / "units.csv", uow=uow)
    yield app
    await app.dispose()


@pytest.fixture(scope="session")
async def client(feedback: Feedback) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(feedback, telemetry=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://feedback") as c:
        yield c


def gateway_headers(
    settings: FeedbackSettings, principal: Principal | None = None, *, address: str = "203.0.113.7"
) -> dict[str, str]:
    """What the gateway adds: the verified principal, its internal token, the client address."""
    headers = {CLIENT_ADDRESS_HEADER: address, INTERNAL_TOKEN_HEADER: settings.internal_token}
    if principal is not None:
        headers[PRINCIPAL_HEADER] = encode_principal(principal)
    return headers


def staff(unit: str, sub: str = "officer-1") -> Principal:
    return Principal(kind="staff", sub=sub, roles=("officer",), unit=unit)


def integrator(*units: str) -> Principal:
    return Principal(kind="integrator", sub="key-1", source="national_portal", units=units)


async def outbox_bodies(feedback: Feedback, routing_key: str | None = None) -> list[dict[str, Any]]:
    import orjson

    async with feedback.uow() as uow:
        query = select(outbox.c.routing_key, outbox.c.body).order_by(outbox.c.created_at)
        rows = (await uow.session.execute(query)).all()
    return [
        {"routing_key": r.routing_key, **orjson.loads(r.body)}
        for r in rows
        if routing_key is None or r.routing_key == routing_key
    ]


async def sql(feedback: Feedback, statement: str, **params: Any) -> list[Any]:
    async with feedback.uow() as uow:
        result = await uow.session.execute(text(statement), params)
        return list(result.all()) if getattr(result, "returns_rows", False) else []
