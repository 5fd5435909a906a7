"""Header blocks no SQI client sends are refused at the gateway, before anything reads them.

uvicorn (httptools) takes a header block of any size — 5 MB in 5,000 fields was accepted — and
the gateway passed every field on to the service: each request could make a service parse
megabytes. The gateway now refuses more than ``max_header_bytes`` or ``max_header_fields`` with
431 (the ingress's own buffers, nginx 4 × 8 KB by default, are below the default bytes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from tests.unit.gateway.conftest import Service


@pytest.fixture
async def gateway(service: Service) -> AsyncIterator[tuple[httpx.AsyncClient, GatewaySettings]]:
    settings = GatewaySettings()
    app = create_app(settings)
    pool = Upstream(service.base_url, timeout_s=5, connect_timeout_s=3, max_connections=10)
    app.state.gateway.services = dict.fromkeys(app.state.gateway.services, pool)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("198.51.100.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client, settings
    await pool.aclose()


async def test_too_many_header_fields_are_a_431(
    gateway: tuple[httpx.AsyncClient, GatewaySettings], service: Service
) -> None:
    client, _ = gateway
    headers = [(f"x-h{i}", "a") for i in range(200)]  # over the default 100
    r = await client.get("/api/v1/scores", headers=headers)
    assert r.status_code == 431, r.text
    assert r.json()["error"]["details"][0]["field"] == "headers"
    assert service.requests == []


async def test_a_header_block_too_large_is_a_431(
    gateway: tuple[httpx.AsyncClient, GatewaySettings], service: Service
) -> None:
    client, _ = gateway
    r = await client.get("/api/v1/scores", headers={"x-big": "a" * 64 * 1024})  # over the default 32 KB
    assert r.status_code == 431, r.text
    assert service.requests == []
    # A large but ordinary block (a staff token, cookies) still passes.
    assert (await client.get("/api/v1/scores", headers={"cookie": "c=" + "a" * 6000})).status_code == 200
