"""What the proxy passes on, both ways: headers, cookies, and nothing kept between requests."""

from __future__ import annotations

import base64
import gzip

import httpx
import orjson
from starlette.requests import Request

from gateway.proxy import forward, upstream_client
from shared.identity import ANONYMOUS, Principal


def incoming(path: str, headers: list[tuple[bytes, bytes]]) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"period=2026-10",
        "headers": headers,
    }
    request = Request(scope)
    request.state.request_id = "gw-req-1"
    return request


async def send(client: httpx.AsyncClient, request: Request, principal: Principal = ANONYMOUS) -> object:
    return await forward(
        client,
        base_url="http://reporting",
        request=request,
        body=b"",
        principal=principal,
        client_address="10.0.0.7",
        internal_token="internal-t",
    )


async def test_the_service_sees_the_verified_identity_and_never_the_callers_credentials() -> None:
    seen: list[httpx.Request] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    staff = Principal(kind="staff", sub="u1", roles=("leader",), unit="CT")
    request = incoming(
        "/api/v1/reports/ranking",
        [
            (b"host", b"gateway.example"),
            (b"authorization", b"Bearer some.jwt.here"),
            (b"x-api-key", b"sqi_abc_secret"),
            (b"x-sqi-principal", b"forged"),
            (b"x-sqi-internal-token", b"forged"),
            (b"x-request-id", b"client-id"),
            (b"accept", b"application/json"),
            (b"x-custom", b"one"),
            (b"x-custom", b"two"),
        ],
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(service)) as client:
        await send(client, request, staff)
    [sent] = seen
    assert str(sent.url) == "http://reporting/api/v1/reports/ranking?period=2026-10"
    assert "authorization" not in sent.headers and "x-api-key" not in sent.headers
    assert sent.headers["host"] == "reporting"
    assert sent.headers.get_list("x-request-id") == ["gw-req-1"]
    assert sent.headers.get_list("x-sqi-internal-token") == ["internal-t"]
    assert sent.headers["x-sqi-client-address"] == "10.0.0.7"
    principal = orjson.loads(base64.urlsafe_b64decode(sent.headers["x-sqi-principal"]))
    assert (principal["kind"], principal["sub"], principal["unit"]) == ("staff", "u1", "CT")
    assert sent.headers["accept"] == "application/json"
    assert sent.headers.get_list("x-custom") == ["one", "two"]


async def test_the_answer_keeps_each_cookie_and_drops_what_the_gateway_redoes() -> None:
    def service(request: httpx.Request) -> httpx.Response:
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"Set-Cookie", b"a=1; Path=/; Expires=Wed, 09 Jun 2027 10:18:14 GMT"),
            (b"set-cookie", b"b=2; Path=/petition; HttpOnly"),
            (b"content-encoding", b"gzip"),
            (b"ETag", b'"v1"'),
        ]
        return httpx.Response(200, headers=headers, content=gzip.compress(b"<p>hi</p>"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(service)) as client:
        response = await send(client, incoming("/petition", [(b"accept", b"text/html")]))
    assert response.body == b"<p>hi</p>"  # type: ignore[attr-defined]
    raw = response.raw_headers  # type: ignore[attr-defined]
    assert [v for k, v in raw if k == b"set-cookie"] == [
        b"a=1; Path=/; Expires=Wed, 09 Jun 2027 10:18:14 GMT",
        b"b=2; Path=/petition; HttpOnly",
    ]
    assert (b"etag", b'"v1"') in raw and (b"content-type", b"text/html; charset=utf-8") in raw
    assert b"content-encoding" not in dict(raw)  # read whole, so decoded
    assert dict(raw)[b"content-length"] == b"9"


async def test_a_cookie_one_caller_was_given_never_rides_along_with_another_callers_request() -> None:
    cookies_seen: list[str | None] = []

    def service(request: httpx.Request) -> httpx.Response:
        cookies_seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "sqi_pakn=secret-of-citizen-1; Path=/petition"})

    client = upstream_client(timeout=httpx.Timeout(5), limits=httpx.Limits())
    client._transport = httpx.MockTransport(service)  # the real client, its transport mocked
    async with client:
        await send(client, incoming("/petition", [(b"accept", b"text/html")]))
        await send(client, incoming("/petition/PA123", [(b"accept", b"text/html")]))
        await send(client, incoming("/petition/PA123", [(b"cookie", b"sqi_pakn=mine")]))
    assert cookies_seen == [None, None, "sqi_pakn=mine"]
    assert not client.cookies
