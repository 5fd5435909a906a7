"""The browser security headers: set by the gateway on every answer, its own and the services'."""

from __future__ import annotations

import httpx

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.upstream import Answer, Upstream
from shared.web import REQUEST_ID_HEADER
from tests.unit.gateway.conftest import Seen, Service

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _policy(answer: httpx.Response) -> dict[str, list[str]]:
    directives = answer.headers.get_list("content-security-policy")
    assert len(directives) == 1, directives  # one policy, never two that a browser would intersect
    return {d.split()[0]: d.split()[1:] for d in directives[0].split(";") if d.strip()}


async def test_a_proxied_page_gets_the_one_policy_whatever_the_service_sent(
    service: Service, gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings]
) -> None:
    def page(_: Seen) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        weak = [(b"content-security-policy", b"script-src *"), (b"x-frame-options", b"ALLOWALL")]
        return 200, [(b"content-type", b"text/html; charset=utf-8"), *weak], b"<!doctype html><p>SQI</p>"

    service.answer = page
    client, _ = gateway_and_settings
    answer = await client.get("/")
    assert answer.status_code == 200
    policy = _policy(answer)
    assert policy["default-src"] == ["'self'"] and policy["script-src"][0] == "'self'"
    assert not {"*", "'unsafe-inline'", "'unsafe-eval'"} & set(policy["script-src"])
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'self'"]
    for name, value in EXPECTED.items():
        assert answer.headers.get_list(name) == [value], name


async def test_the_gateways_own_answers_carry_them_and_docs_runs_only_its_own_inline_script(
    gateway_and_settings: tuple[httpx.AsyncClient, GatewaySettings],
) -> None:
    client, _ = gateway_and_settings
    docs = await client.get("/docs")
    hashes = [s for s in _policy(docs)["script-src"] if s.startswith("'sha256-")]
    assert len(hashes) == 1 and "<script>" in docs.text  # the Swagger UI bootstrap, by its hash
    refused = await client.get("/api/v1/%2e%2e/x")  # refused before routing: still under the policy
    assert refused.status_code == 400 and _policy(refused)["default-src"] == ["'self'"]
    for answer in (docs, refused):
        for name, value in EXPECTED.items():
            assert answer.headers.get(name) == value, name


class _Broken(Upstream):
    """A pool with a bug: the proxy's call to it raises what nothing in the gateway handles."""

    async def request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        raise RuntimeError("a bug in the gateway")


async def test_an_unhandled_error_answers_500_under_the_same_headers_and_its_request_id() -> None:
    # Starlette answers an unhandled error in its outermost middleware: the headers must wrap even
    # that, and the request id (shared.web's wrapper of the whole stack) with them.
    app = create_app(GatewaySettings())
    broken = _Broken("http://127.0.0.1:9", timeout_s=1, connect_timeout_s=1, max_connections=1)
    app.state.gateway.services = dict.fromkeys(app.state.gateway.services, broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("198.51.100.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        kept = await client.get("/ranking/P01", headers={REQUEST_ID_HEADER: "gw-500-1"})
        fresh = await client.get("/ranking/P01")
    for answer in (kept, fresh):
        assert answer.status_code == 500, answer.text
        assert answer.json()["error"]["code"] == "internal"  # the gateway's own 500 body, as before
        assert len(answer.headers.get_list(REQUEST_ID_HEADER)) == 1
        assert answer.headers[REQUEST_ID_HEADER] in answer.json()["error"]["message"]
        assert _policy(answer)["default-src"] == ["'self'"]
        for name, value in EXPECTED.items():
            assert answer.headers.get_list(name) == [value], name
    assert kept.headers[REQUEST_ID_HEADER] == "gw-500-1"
    assert fresh.headers[REQUEST_ID_HEADER] != kept.headers[REQUEST_ID_HEADER]
