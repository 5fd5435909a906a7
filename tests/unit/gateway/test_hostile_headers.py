"""Header blocks no SQI client sends are refused at the gateway, before anything reads them.

uvicorn (httptools) takes a header block of any size — 5 MB in 5,000 fields was accepted — and
the gateway passed every field on to the service: each request could make a service parse
megabytes. The gateway now refuses more than ``max_header_bytes`` or ``max_header_fields`` with
431 (the ingress's own buffers, nginx 4 × 8 KB by default, are below the default bytes)."""

from __future__ import annotations

import httpx

from gateway.settings import GatewaySettings
from tests.unit.gateway.conftest import Service


async def test_too_many_header_fields_are_a_431(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings], service: Service
) -> None:
    client, _ = gateway_and_settings
    headers = [(f"x-h{i}", "a") for i in range(200)]  # over the default 100
    r = await client.get("/api/v1/scores", headers=headers)
    assert r.status_code == 431, r.text
    assert r.json()["error"]["details"][0]["field"] == "headers"
    assert service.requests == []


async def test_a_header_block_too_large_is_a_431(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings], service: Service
) -> None:
    client, _ = gateway_and_settings
    r = await client.get("/api/v1/scores", headers={"x-big": "a" * 64 * 1024})  # over the default 32 KB
    assert r.status_code == 431, r.text
    assert service.requests == []
    # A large but ordinary block (a staff token, cookies) still passes.
    assert (await client.get("/api/v1/scores", headers={"cookie": "c=" + "a" * 6000})).status_code == 200
