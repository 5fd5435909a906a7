"""The gateway's own input: a staff token's claims of the wrong type are refused as 401 (never a
500, nor taken as roles), and a body declared larger than any route takes is refused before it is
read, on the gateway's own routes too."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from gateway.settings import GatewaySettings

MB = 1 << 20


class CountedBody:
    """A request body of ``chunks`` pieces of ``size`` bytes, streamed (no length), that counts
    how much of it the gateway read."""

    def __init__(self, *, chunks: int, size: int) -> None:
        self.chunks, self.size, self.read = chunks, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += self.size
            yield b"x" * self.size


def _token(settings: GatewaySettings, **extra: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "u1",
        "roles": ["unit_head"],
        "unit": "P01",
        "iat": now,
        "exp": now + 60,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        **extra,
    }
    assert settings.jwt_hs256_secret
    return jwt.encode(claims, settings.jwt_hs256_secret, algorithm="HS256")


@pytest.mark.parametrize(
    "roles", [5, 1.5, True, {"admin": 1}], ids=["int", "float", "bool", "object-keys-taken-as-roles"]
)
async def test_roles_claim_of_the_wrong_type_is_a_401(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings], roles: Any
) -> None:
    client, settings = gateway_and_settings
    r = await client.get("/api/v1/scores", headers={"Authorization": f"Bearer {_token(settings, roles=roles)}"})
    assert r.status_code == 401, r.text


async def test_an_oversized_body_is_refused_before_it_is_read_on_the_gateways_own_routes(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings],
) -> None:
    client, settings = gateway_and_settings
    body = CountedBody(chunks=4, size=MB)
    size = str(4 * MB)
    r = await client.post(
        "/api/v1/keys", content=body, headers={"content-length": size, "content-type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert body.read <= settings.default_max_bytes  # at most what the transport had in hand


async def test_a_chunked_body_is_stopped_at_the_limit_on_the_gateways_own_routes(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings],
) -> None:
    """No length to refuse up front: FastAPI read all of it (anonymously) before answering 401."""
    client, settings = gateway_and_settings
    body = CountedBody(chunks=8, size=MB // 4)
    r = await client.post("/api/v1/keys", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["details"] == [
        {"field": "body", "reason": f"at most {settings.default_max_bytes} bytes on this route"}
    ]
    assert body.read <= settings.default_max_bytes + MB // 4  # stopped at the chunk that passed the limit
