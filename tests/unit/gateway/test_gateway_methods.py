"""The methods of the gateway's own routes (RFC 9110): HEAD on a GET route is that GET without its
body (§9.3.2), any other method a route does not take is 405 with ``Allow`` (§15.5.6) — not the
404 of the catch-all proxy route, which took every method on every path and found no service
for these. The routes the gateway forwards keep forwarding every method as they did."""

from __future__ import annotations

import httpx
import pytest

from gateway.settings import GatewaySettings
from tests.unit.gateway.conftest import Service

GET_ROUTES = ["/healthz", "/docs", "/api/v1/openapi.json"]


def allowed(answer: httpx.Response) -> set[str]:
    return {method.strip() for method in answer.headers["allow"].split(",")}


@pytest.mark.parametrize("path", GET_ROUTES)
async def test_head_on_a_get_route_is_the_get_without_its_body(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings], service: Service, path: str
) -> None:
    client, _ = gateway_and_settings
    get, head = await client.get(path), await client.head(path)
    assert (head.status_code, get.status_code) == (200, 200), head.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["x-request-id"] and head.headers["x-content-type-options"] == "nosniff"
    assert service.requests == []  # answered by the gateway itself


@pytest.mark.parametrize(
    ("method", "path", "methods"),
    [
        ("OPTIONS", "/healthz", {"GET", "HEAD"}),
        ("POST", "/docs", {"GET", "HEAD"}),
        ("OPTIONS", "/api/v1/openapi.json", {"GET", "HEAD"}),
        ("OPTIONS", "/api/v1/keys", {"GET", "HEAD", "POST"}),
        ("PUT", "/api/v1/keys", {"GET", "HEAD", "POST"}),
        ("HEAD", "/api/v1/keys/abc123", {"DELETE"}),
        ("OPTIONS", "/api/v1/keys/abc123", {"DELETE"}),
    ],
)
async def test_a_method_an_own_route_does_not_take_is_a_405_with_allow(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings],
    service: Service,
    method: str,
    path: str,
    methods: set[str],
) -> None:
    client, _ = gateway_and_settings
    answer = await client.request(method, path)
    assert answer.status_code == 405, answer.text
    assert allowed(answer) == methods
    if method != "HEAD":
        assert answer.json()["error"]["code"] == "method_not_allowed"
    assert answer.headers["x-request-id"] and answer.headers["x-frame-options"] == "DENY"
    assert service.requests == []


async def test_head_keeps_what_get_checks(gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings]) -> None:
    client, settings = gateway_and_settings
    assert (await client.head("/api/v1/keys")).status_code == 401  # the admin list, as its GET
    # /metrics is a 404 to whoever may not read it, whatever the method (docs/decisions.md, gateway).
    for method in ("GET", "HEAD", "OPTIONS", "POST"):
        assert (await client.request(method, "/metrics")).status_code == 404, method
    token = {"X-SQI-Internal-Token": settings.internal_token}
    assert (await client.head("/metrics", headers=token)).status_code == 200
    assert (await client.options("/metrics", headers=token)).status_code == 405


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "POST", "DELETE"])
async def test_a_path_nobody_answers_stays_a_404(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings], service: Service, method: str
) -> None:
    client, _ = gateway_and_settings
    answer = await client.request(method, "/nowhere")
    assert answer.status_code == 404 and "allow" not in answer.headers
    assert service.requests == []


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
@pytest.mark.parametrize("path", ["/api/v1/scores", "/"])
async def test_the_forwarded_routes_forward_head_and_options_as_before(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings], service: Service, method: str, path: str
) -> None:
    client, _ = gateway_and_settings
    answer = await client.request(method, path)
    assert answer.status_code == 200  # what the service answered
    assert [(seen.method, seen.raw_path) for seen in service.requests] == [(method, path.encode())]
