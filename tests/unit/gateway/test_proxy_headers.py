"""What the proxy passes on, both ways: headers, cookies, and nothing kept between requests."""

from __future__ import annotations

import base64
import gzip

import httpx
import orjson
from starlette.requests import Request

from gateway.proxy import forward
from gateway.upstream import Upstream
from shared.identity import ANONYMOUS, Principal
from tests.unit.gateway.conftest import Seen, Service


def incoming(path: str, headers: list[tuple[bytes, bytes]], method: str = "GET") -> Request:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"period=2026-10",
        "headers": headers,
    }
    request = Request(scope)
    request.state.request_id = "gw-req-1"
    return request


def upstream_of(service: Service) -> Upstream:
    return Upstream(service.base_url, timeout_s=5, connect_timeout_s=3, max_connections=10)


async def send(upstream: Upstream, request: Request, principal: Principal = ANONYMOUS, body: bytes = b"") -> object:
    async with httpx.AsyncClient() as stream_client:
        return await forward(
            upstream,
            stream_client,
            request=request,
            body=body,
            principal=principal,
            client_address="10.0.0.7",
            internal_token="internal-t",
        )


async def test_the_service_sees_the_verified_identity_and_never_the_callers_credentials(service: Service) -> None:
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
    await send(upstream_of(service), request, staff)
    [sent] = service.requests
    assert (sent.raw_path, sent.query_string) == (b"/api/v1/reports/ranking", b"period=2026-10")
    assert not sent.header(b"authorization") and not sent.header(b"x-api-key")
    assert sent.header(b"host") == [service.base_url.removeprefix("http://").encode()]
    assert sent.header(b"x-request-id") == [b"gw-req-1"]
    assert sent.header(b"x-sqi-internal-token") == [b"internal-t"]
    assert sent.header(b"x-sqi-client-address") == [b"10.0.0.7"]
    [principal_header] = sent.header(b"x-sqi-principal")
    principal = orjson.loads(base64.urlsafe_b64decode(principal_header))
    assert (principal["kind"], principal["sub"], principal["unit"]) == ("staff", "u1", "CT")
    assert sent.header(b"accept") == [b"application/json"]
    assert sent.header(b"x-custom") == [b"one", b"two"]


async def test_a_body_reaches_the_service_whole_with_its_length(service: Service) -> None:
    body = b'{"event_id": "e1"}\n' * 1000
    request = incoming("/api/v1/events", [(b"content-type", b"application/x-ndjson")], method="POST")
    response = await send(upstream_of(service), request, body=body)
    assert response.status_code == 200  # type: ignore[attr-defined]
    [sent] = service.requests
    assert sent.method == "POST" and sent.body == body
    assert sent.header(b"content-length") == [str(len(body)).encode()]


async def test_the_answer_keeps_each_cookie_and_drops_what_the_gateway_redoes(service: Service) -> None:
    def answer(_: Seen) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        content = gzip.compress(b"<p>hi</p>")
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"Set-Cookie", b"a=1; Path=/; Expires=Wed, 09 Jun 2027 10:18:14 GMT"),
            (b"set-cookie", b"b=2; Path=/petition; HttpOnly"),
            (b"content-encoding", b"gzip"),
            (b"ETag", b'"v1"'),
            (b"content-length", str(len(content)).encode()),
        ]
        return 200, headers, content

    service.answer = answer
    response = await send(upstream_of(service), incoming("/petition", [(b"accept", b"text/html")]))
    assert response.body == b"<p>hi</p>"  # type: ignore[attr-defined]
    raw = response.raw_headers  # type: ignore[attr-defined]
    assert [v for k, v in raw if k == b"set-cookie"] == [
        b"a=1; Path=/; Expires=Wed, 09 Jun 2027 10:18:14 GMT",
        b"b=2; Path=/petition; HttpOnly",
    ]
    assert (b"etag", b'"v1"') in raw and (b"content-type", b"text/html; charset=utf-8") in raw
    assert b"content-encoding" not in dict(raw)  # read whole, so decoded
    assert dict(raw)[b"content-length"] == b"9"


async def test_a_cookie_one_caller_was_given_never_rides_along_with_another_callers_request(
    service: Service,
) -> None:
    service.answer = lambda _: (200, [(b"set-cookie", b"sqi_pakn=secret-of-citizen-1; Path=/petition")], b"")
    upstream = upstream_of(service)
    await send(upstream, incoming("/petition", [(b"accept", b"text/html")]))
    await send(upstream, incoming("/petition/PA123", [(b"accept", b"text/html")]))
    await send(upstream, incoming("/petition/PA123", [(b"cookie", b"sqi_pakn=mine")]))
    assert [r.header(b"cookie") for r in service.requests] == [[], [], [b"sqi_pakn=mine"]]
    await upstream.aclose()


async def test_hop_by_hop_and_client_written_forwarding_headers_stop_at_the_gateway(service: Service) -> None:
    """Headers the caller's ``Connection`` names are for the gateway alone (RFC 9110 §7.6.1), and so
    are ``Expect`` (the gateway has read the body) and ``Proxy-Connection``. X-Forwarded-For and its
    kin, as the client wrote them, would let it pick the address and scheme a service's server
    believes (uvicorn trusts proxy headers from loopback): the gateway decides the client address
    (X-SQI-Client-Address) and sends nothing else about it."""
    request = incoming(
        "/api/v1/ratings",
        [
            (b"host", b"gateway.example"),
            (b"connection", b"keep-alive, X-Hop-Secret"),
            (b"connection", b"X-Other-Hop"),
            (b"x-hop-secret", b"s"),
            (b"x-other-hop", b"o"),
            (b"proxy-connection", b"keep-alive"),
            (b"expect", b"100-continue"),
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"evil.example"),
            (b"forwarded", b"for=6.6.6.6"),
            (b"x-real-ip", b"6.6.6.6"),
            (b"x-kept", b"yes"),
        ],
        method="POST",
    )
    upstream = upstream_of(service)
    await send(upstream, request, body=b"{}")
    await upstream.aclose()
    seen = service.requests[-1]
    names = {name for name, _ in seen.headers}
    gone = {b"x-hop-secret", b"x-other-hop", b"proxy-connection", b"expect", b"forwarded", b"x-real-ip"}
    assert not names & gone
    assert not {n for n in names if n.startswith(b"x-forwarded-")}
    assert seen.header(b"x-kept") == [b"yes"]
    assert seen.header(b"x-sqi-client-address") == [b"10.0.0.7"]
