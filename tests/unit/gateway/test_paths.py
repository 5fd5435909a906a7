"""One normalised path: routed, limited and forwarded alike (issue 10, items 7 and "no 500s")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.paths import BadPath, normalise
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from shared.metrics import CITIZEN_WRITES_REFUSED
from tests.unit.gateway.conftest import Service


@pytest.mark.parametrize(
    ("raw", "decoded", "encoded"),
    [
        (b"/api/v1/ratings", "/api/v1/ratings", "/api/v1/ratings"),
        (b"//api//v1/ratings", "/api/v1/ratings", "/api/v1/ratings"),
        (b"/api/v1/units/", "/api/v1/units/", "/api/v1/units/"),
        (b"/", "/", "/"),
        (b"/api/v1/dossiers/HS%2001/x", "/api/v1/dossiers/HS 01/x", "/api/v1/dossiers/HS%2001/x"),
        (b"/api/v1/units/%50%30%31", "/api/v1/units/P01", "/api/v1/units/P01"),
        (b"/rate/H%E1%BB%93", "/rate/H\u1ed3", "/rate/H%E1%BB%93"),
        (b"/api/v1/units/a...b", "/api/v1/units/a...b", "/api/v1/units/a...b"),
    ],
)
def test_normal_paths(raw: bytes, decoded: str, encoded: str) -> None:
    normal = normalise(raw)
    assert (normal.decoded, normal.encoded) == (decoded, encoded)


@pytest.mark.parametrize(
    "raw",
    [
        b"/static/feedback/../../api/v1/ratings",
        b"/static/feedback/%2e%2e/%2e%2e/api/v1/ratings",
        b"/static/feedback/%2E%2E/api/v1/ratings",
        b"/static/feedback/.%2e/api/v1/ratings",
        b"/api/v1/./ratings",
        b"/api/v1/%2e/ratings",
        b"/api/v1/ratings/..",
        b"/static/feedback/..%2Fapi%2Fv1%2Fratings",
        b"/static/feedback/%2fapi",
        b"/static/feedback/..\\..\\api\\v1\\ratings",
        b"/static/feedback/%5c..%5capi",
        b"/api/v1/scores/P%0001",
        b"/api/v1/scores/P%1f",
        b"/api/v1/scores/P%7F",
        b"/api/v1/scores/P\x01",
        b"/api/v1/scores/%FF",
        b"/api/v1/scores/\xc3\xa0",
        b"api/v1/scores",
    ],
)
def test_refused_paths(raw: bytes) -> None:
    with pytest.raises(BadPath):
        normalise(raw)


@pytest.fixture
async def gateway(service: Service) -> AsyncIterator[tuple[httpx.AsyncClient, Service]]:
    """The gateway app, every service being one real recording service (tests.unit.gateway.conftest)."""
    app = create_app(GatewaySettings(citizen_writes_per_minute=3))
    service.answer = lambda _: (201, [(b"content-type", b"application/json")], b'{"ok": true}')
    gw = app.state.gateway
    pool = Upstream(service.base_url, timeout_s=5, connect_timeout_s=3, max_connections=10)
    gw.services = dict.fromkeys(gw.services, pool)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.4", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client, service
    await pool.aclose()


def forwarded(service: Service) -> list[bytes]:
    return [r.raw_path + (b"?" + r.query_string if r.query_string else b"") for r in service.requests]


RATING = {"dossier_id": "D1", "rating_code": "ABCDEFGH", "level": "satisfied"}


async def test_dot_segments_cannot_escape_the_citizen_limit(gateway: tuple[httpx.AsyncClient, Service]) -> None:
    client, upstream = gateway
    for path in (
        "/static/feedback/%2e%2e/%2e%2e/api/v1/ratings",
        "/static/feedback/%2E%2E/%2E%2E/api/v1/ratings",
        "/static/feedback/.%2e/.%2e/api/v1/ratings",
    ):
        response = await client.post(path, json=RATING)
        assert response.status_code == 400, path
        body = response.json()["error"]
        assert body["details"][0]["field"] == "path"
        assert "'.'" in body["details"][0]["reason"]
        assert response.headers["x-request-id"]
    assert upstream.requests == []


async def test_the_normalised_path_is_limited_and_forwarded_exactly(
    gateway: tuple[httpx.AsyncClient, Service],
) -> None:
    client, upstream = gateway
    before = CITIZEN_WRITES_REFUSED.labels("/api/v1/ratings")._value.get()
    statuses = [(await client.post(p, json=RATING)).status_code for p in ("/api/v1/ratings", "/api/v1//ratings")]
    statuses.append((await client.post("/api//v1/ratings", json=RATING)).status_code)
    refused = await client.post("/api/v1/ratings", json=RATING)
    assert statuses == [201, 201, 201]
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert CITIZEN_WRITES_REFUSED.labels("/api/v1/ratings")._value.get() == before + 1
    assert forwarded(upstream) == [b"/api/v1/ratings"] * 3


async def test_encoded_characters_reach_the_service_as_routed(gateway: tuple[httpx.AsyncClient, Service]) -> None:
    client, upstream = gateway
    response = await client.get("/api/v1/dossiers/HS%2001%3F/rating-code?x=a%20b&y=%C3%A0")
    assert response.status_code == 201
    assert forwarded(upstream)[-1] == b"/api/v1/dossiers/HS%2001%3F/rating-code?x=a%20b&y=%C3%A0"


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/scores/P%0001", "path"),
        ("/api/v1/petitions/PA%0A/answer", "path"),
        ("/api/v1/scores/%7f", "path"),
        ("/api/v1/units/%2Fetc", "path"),
        ("/api/v1/keys/%00", "path"),
        ("/api/v1/scores?period=%00", "query"),
        ("/api/v1/petitions/PA1?access_code=%1b", "query"),
    ],
)
async def test_control_characters_get_a_400_not_a_500(
    gateway: tuple[httpx.AsyncClient, Service], url: str, field: str
) -> None:
    client, upstream = gateway
    response = await client.post(url, json={}) if "answer" in url else await client.get(url)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"][0]["field"] == field
    assert upstream.requests == []


async def test_client_request_ids_are_kept_only_when_short_and_safe(
    gateway: tuple[httpx.AsyncClient, Service],
) -> None:
    client, _ = gateway
    kept = await client.get("/healthz", headers={"X-Request-ID": "abc-123.x:y"})
    assert kept.headers["x-request-id"] == "abc-123.x:y"
    for bad in (b"x" * 3000, b"a b", b"<script>", "id\u00e9".encode()):
        replaced = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert replaced.headers["x-request-id"].encode() != bad
        assert len(replaced.headers["x-request-id"]) <= 64


async def test_metrics_need_the_internal_token(gateway: tuple[httpx.AsyncClient, Service]) -> None:
    client, upstream = gateway
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 404
    token = GatewaySettings().internal_token
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    assert (await client.get("/metrics", headers={"X-SQI-Internal-Token": token})).status_code == 200
    # The services' own /metrics and /readyz are not routed, however the path is spelled.
    for path in ("/api/v1/%2E%2E/%2e%2E/metrics", "/static/feedback/%2e%2e/readyz", "/static/feedback/..%2fmetrics"):
        assert (await client.get(path)).status_code == 400
    assert upstream.requests == []


async def test_behind_the_ingress_only_in_cluster_scrapes_see_metrics() -> None:
    app = create_app(GatewaySettings(trust_forwarded_for=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        assert (await client.get("/metrics")).status_code == 200  # Prometheus, straight to the pod
        assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status_code == 404


async def test_raw_non_ascii_in_the_query_is_a_400_not_a_500(gateway: tuple[httpx.AsyncClient, Service]) -> None:
    client, upstream = gateway
    app = client._transport.app  # type: ignore[attr-defined]
    scope_query = "unit=Hà".encode()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/scores",
        "raw_path": b"/api/v1/scores",
        "query_string": scope_query,
        "headers": [(b"host", b"gw")],
        "client": ("198.51.100.9", 1),
        "server": ("gw", 80),
        "root_path": "",
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert upstream.requests == []
