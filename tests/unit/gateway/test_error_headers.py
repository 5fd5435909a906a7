"""A gateway 500 carries both its request id and the security headers (two wrappers of the whole
built stack, shared.web's and gateway.security_headers', working together)."""

from __future__ import annotations

import httpx

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.web import REQUEST_ID_HEADER
from tests.unit.gateway.test_security_headers import EXPECTED, _Broken, _policy


async def test_a_gateway_500_carries_the_request_id_and_the_security_headers() -> None:
    app = create_app(GatewaySettings())
    broken = _Broken("http://127.0.0.1:9", timeout_s=1, connect_timeout_s=1, max_connections=1)
    app.state.gateway.services = dict.fromkeys(app.state.gateway.services, broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("198.51.100.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        kept = await client.get("/ranking/P01", headers={REQUEST_ID_HEADER: "gw-500-1"})
        fresh = await client.get("/ranking/P01")
    for answer in (kept, fresh):
        assert answer.status_code == 500, answer.text
        assert len(answer.headers.get_list(REQUEST_ID_HEADER)) == 1
        assert answer.headers[REQUEST_ID_HEADER] in answer.json()["error"]["message"]
        assert _policy(answer)["default-src"] == ["'self'"]
        for name, value in EXPECTED.items():
            assert answer.headers.get_list(name) == [value], name
    assert kept.headers[REQUEST_ID_HEADER] == "gw-500-1"
    assert fresh.headers[REQUEST_ID_HEADER] != kept.headers[REQUEST_ID_HEADER]
