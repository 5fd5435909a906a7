"""Ingest while PostgreSQL is unreachable: 503 with Retry-After (the integrator retries), not 500."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from services.ingest.api.app import create_app
from services.ingest.bootstrap import bootstrap
from services.ingest.settings import IngestSettings
from shared.web import REQUEST_ID_HEADER
from tests.integration.ingest.conftest import headers, integrator, new_id, received

pytestmark = pytest.mark.integration


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def down_settings() -> IngestSettings:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/sqi_nowhere"
    return IngestSettings(database_url=url, environment="test")


@pytest.fixture
async def down_client(down_settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    ingest = bootstrap(down_settings)
    # raise_app_exceptions=False: a 500 would come back as an answer, so the test sees it.
    transport = httpx.ASGITransport(app=create_app(ingest), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield client
    await ingest.dispose()


async def test_a_write_is_refused_with_503_and_retry_after(
    down_client: httpx.AsyncClient, down_settings: IngestSettings
) -> None:
    batch = [received("src-down", new_id())]
    answer = await down_client.post(
        "/api/v1/events",
        json=batch,
        headers={**headers(down_settings, integrator("src-down", "P01")), REQUEST_ID_HEADER: "down-1"},
    )
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.headers[REQUEST_ID_HEADER] == "down-1"
    error = answer.json()["error"]
    assert error["code"] == "unavailable" and error["details"] == [] and error["message"]


async def test_reads_too_and_health_is_unchanged(down_client: httpx.AsyncClient, down_settings: IngestSettings) -> None:
    units = await down_client.get("/api/v1/units", headers=headers(down_settings, integrator("src-down", "P01")))
    assert units.status_code == 503 and "Retry-After" in units.headers
    assert (await down_client.get("/healthz")).status_code == 200
    ready = await down_client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"] == {"database": False}
    # Refused before the database is needed: the same answers as with PostgreSQL up.
    anonymous = await down_client.post("/api/v1/events", json=[], headers=headers(down_settings))
    assert anonymous.status_code == 401
