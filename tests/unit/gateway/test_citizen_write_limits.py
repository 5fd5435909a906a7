"""The citizen write limit holds whoever sends the write (a key or a staff token is no pass).

A credential exempted its holder from the per-address limit on every citizen route: any
integrator key or staff token could post ratings (guessing codes across dossier ids) and
petitions (each naming a dossier costs its unit in 5.4) without bound. Only the writes that are
the credential's own stay outside it: an integrator's rating import, staff's handling of a
petition.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from shared.identity import Principal
from tests.unit.gateway.conftest import Service

LIMIT = 3
INTEGRATOR = Principal(kind="integrator", sub="tms-p01", source="tms-p01", units=("P01",), key_id="k1")
RATING = {"dossier_id": "D1", "rating_code": "ABCDEFGH", "level": "satisfied"}
PETITION = {"unit_code": "P01", "category": "procedure", "title": "Tiêu đề", "content": "Nội dung"}


class KnownKey:
    """Stands in for the key store: one valid integrator key."""

    async def verify(self, presented: str) -> Principal | None:
        return INTEGRATOR if presented == "sqi_k1_secret" else None


@pytest.fixture
async def gateway(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(citizen_writes_per_minute=LIMIT)
    app = create_app(settings)
    service.answer = lambda _: (201, [(b"content-type", b"application/json")], b'{"ok": true}')
    gw = app.state.gateway
    gw.keys = KnownKey()
    pool = Upstream(service.base_url, timeout_s=5, connect_timeout_s=3, max_connections=10)
    gw.services = dict.fromkeys(gw.services, pool)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client
    await pool.aclose()


def staff_headers() -> dict[str, str]:
    token = mint_dev_token(GatewaySettings(), sub="truong-p01", role="unit_head", unit="P01")
    return {"Authorization": f"Bearer {token}"}


KEY = {"Authorization": "Bearer sqi_k1_secret"}


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/api/v1/ratings", RATING, KEY),
        ("/api/v1/ratings", RATING, None),
        ("/api/v1/petitions", PETITION, None),
        ("/api/v1/petitions/PAX/reaction", {"access_code": "X", "reaction": "like"}, KEY),
    ],
    ids=["rating-with-key", "rating-with-staff-token", "petition-with-staff-token", "reaction-with-key"],
)
async def test_a_credential_does_not_lift_the_citizen_limit(
    gateway: httpx.AsyncClient, path: str, body: dict[str, str], headers: dict[str, str] | None
) -> None:
    headers = headers or staff_headers()
    statuses = [(await gateway.post(path, json=body, headers=headers)).status_code for _ in range(LIMIT + 1)]
    assert statuses == [201] * LIMIT + [429]


async def test_the_credentials_own_writes_stay_outside_the_limit(gateway: httpx.AsyncClient) -> None:
    imports = [
        (await gateway.post("/api/v1/ratings/import", json=[], headers=KEY)).status_code for _ in range(LIMIT + 2)
    ]
    staff = staff_headers()
    actions = [
        (await gateway.post(f"/api/v1/petitions/PA{i}/{action}", json={}, headers=staff)).status_code
        for i, action in enumerate(("refuse", "request-info", "answer", "publish", "transfer"))
    ]
    assert imports == [201] * (LIMIT + 2)
    assert actions == [201] * 5
    # The address's citizen budget is still whole: none of the above spent it.
    citizen = [(await gateway.post("/api/v1/ratings", json=RATING)).status_code for _ in range(LIMIT + 1)]
    assert citizen == [201] * LIMIT + [429]


async def test_an_anonymous_caller_cannot_pass_for_staff_on_petition_actions(gateway: httpx.AsyncClient) -> None:
    """Without a credential a petition action is a citizen write like any other (the service refuses it)."""
    statuses = [(await gateway.post("/api/v1/petitions/PA1/answer", json={})).status_code for _ in range(LIMIT + 1)]
    assert statuses == [201] * LIMIT + [429]
