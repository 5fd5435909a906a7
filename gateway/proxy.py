"""Forwarding a request to its service with the verified identity attached.

Answers are read whole (through the service's :class:`gateway.upstream.Upstream` pool) and
passed on, except an event stream (``text/event-stream``, the dashboard's live refresh): that
one goes through httpx's streaming client, is relayed chunk by chunk as it comes, and the
upstream connection is closed as soon as the client goes away.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from functools import lru_cache
from http.client import HTTPResponse
from http.cookiejar import Cookie, CookieJar

import anyio
import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from gateway.upstream import EventStreamAnswer, Upstream, UpstreamError, UpstreamTimeout
from shared.identity import CLIENT_ADDRESS_HEADER, INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal
from shared.web import REQUEST_ID_HEADER, error_response

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
# Not passed on to a service: the caller's credentials (the gateway sends the verified
# principal instead), its request id (the gateway sends the one it kept or made), what only the
# gateway's own hop means (Expect: the body is already read; the non-standard Proxy-Connection),
# and what the client wrote about its address or scheme: the services' uvicorn believes proxy
# headers from loopback, and the gateway alone decides who the client is (X-SQI-Client-Address).
NOT_FORWARDED = HOP_BY_HOP | {
    b"authorization",
    b"x-api-key",
    REQUEST_ID_HEADER.lower().encode(),
    b"expect",
    b"proxy-connection",
    b"forwarded",
    b"x-real-ip",
}
# Every answer is read whole, so it reaches the client decoded: no content-encoding either.
NOT_RELAYED = HOP_BY_HOP | {b"content-encoding"}
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
PRINCIPAL_HEADER_BYTES = PRINCIPAL_HEADER.lower().encode()
INTERNAL_TOKEN_HEADER_BYTES = INTERNAL_TOKEN_HEADER.lower().encode()
CLIENT_ADDRESS_HEADER_BYTES = CLIENT_ADDRESS_HEADER.lower().encode()
REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode()
EVENT_STREAM = "text/event-stream"


def wants_event_stream(request: Request) -> bool:
    """An ``EventSource`` asks for ``text/event-stream``: such a request gets the stream client."""
    return request.method == "GET" and EVENT_STREAM in request.headers.get("accept", "")


def is_event_stream(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").split(";")[0].strip() == EVENT_STREAM


async def relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body as it arrives; closed when it ends, fails, or the client leaves."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return  # the service went away: the stream ends, the browser reconnects
    finally:
        # The client leaving cancels this generator; closing must still run to the end.
        with anyio.CancelScope(shield=True):
            await upstream.aclose()


@lru_cache(maxsize=4096)
def encoded_principal(principal: Principal) -> bytes:
    """The principal header's value; a key's or a staff token's principal is the same object
    request after request (the verifiers cache them), so it is encoded once."""
    return encode_principal(principal).encode()


def upstream_headers(
    request: Request, *, principal: Principal, client_address: str, internal_token: str
) -> list[tuple[bytes, bytes]]:
    """The caller's headers for the service, minus credentials and hop-by-hop ones, plus the
    verified identity. Lists as the server holds them (lower-case bytes): no decoding, and a
    repeated header stays repeated."""
    raw: list[tuple[bytes, bytes]] = request.scope["headers"]
    dropped = NOT_FORWARDED | connection_options(raw)
    headers = [
        (name, value)
        for name, value in raw
        if name not in dropped and not name.startswith((b"x-sqi-", b"x-forwarded-"))
    ]
    headers += [
        (PRINCIPAL_HEADER_BYTES, encoded_principal(principal)),
        (INTERNAL_TOKEN_HEADER_BYTES, internal_token.encode()),
        (CLIENT_ADDRESS_HEADER_BYTES, client_address.encode("latin-1")),  # as the server decoded it
        (REQUEST_ID_HEADER_BYTES, request.state.request_id.encode()),
    ]
    return headers


def connection_options(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names the caller's ``Connection`` fields declare hop-by-hop (RFC 9110 §7.6.1)."""
    return frozenset(
        option.strip().lower()
        for name, value in headers
        if name == b"connection"
        for option in value.split(b",")
        if option.strip()
    )


def upstream_target(request: Request) -> str:
    """Exactly the path the gateway routed on (gateway.paths), encoded, and the query as sent."""
    target: str = request.scope["raw_path"].decode("ascii")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{target}?{query}" if query else target


async def forward(
    upstream: Upstream,
    stream_client: httpx.AsyncClient,
    *,
    request: Request,
    body: bytes,
    principal: Principal,
    client_address: str,
    internal_token: str,
) -> Response:
    """The service's answer to the request, read whole, or an event stream relayed as it comes."""
    headers = upstream_headers(
        request, principal=principal, client_address=client_address, internal_token=internal_token
    )
    target = upstream_target(request)
    if wants_event_stream(request):
        return await forward_streaming(stream_client, url=upstream.base_url + target, request=request, headers=headers)
    if " " in target or not target.isprintable():  # not one request line (never so after gateway.paths)
        return error_response(
            400, "the request URL cannot be forwarded", details=[{"field": "path", "reason": "not a valid URL"}]
        )
    attempts = 3 if request.method in IDEMPOTENT else 1
    for attempt in range(attempts):
        try:
            answer = await upstream.request(request.method, target, headers, body)
            break
        except EventStreamAnswer:
            if request.method != "GET":
                return error_response(502, "the service answered with an event stream")
            return await forward_streaming(
                stream_client, url=upstream.base_url + target, request=request, headers=headers
            )
        except UpstreamTimeout:
            if attempt + 1 == attempts:
                return error_response(504, "the service did not answer in time")
        except UpstreamError:
            # Only connection failures are retried, and only for idempotent methods.
            if attempt + 1 == attempts:
                return error_response(503, "the service is unavailable; try again shortly")
            await asyncio.sleep(0.2 * (attempt + 1))
    response = Response(content=answer.body, status_code=answer.status)
    response.raw_headers += [(name, value) for name, value in answer.headers if name not in NOT_RELAYED]
    return response


async def forward_streaming(
    client: httpx.AsyncClient, *, url: str, request: Request, headers: list[tuple[bytes, bytes]]
) -> Response:
    """Through httpx's streaming client: an event stream (the dashboard's live refresh) is
    relayed chunk by chunk; any other answer is read whole."""
    attempts = 3 if request.method in IDEMPOTENT else 1
    for attempt in range(attempts):
        try:
            upstream = await client.send(
                client.build_request(request.method, url, content=b"", headers=headers), stream=True
            )
            if not is_event_stream(upstream):
                try:
                    await upstream.aread()  # any other answer is read whole
                finally:
                    await upstream.aclose()
            break
        except httpx.InvalidURL:
            return error_response(
                400, "the request URL cannot be forwarded", details=[{"field": "path", "reason": "not a valid URL"}]
            )
        except httpx.TimeoutException:
            if attempt + 1 == attempts:
                return error_response(504, "the service did not answer in time")
        except httpx.TransportError:
            if attempt + 1 == attempts:
                return error_response(503, "the service is unavailable; try again shortly")
            await asyncio.sleep(0.2 * (attempt + 1))
    if is_event_stream(upstream):
        # Relayed raw (not decoded): any content-encoding stays as the service sent it.
        stream = StreamingResponse(relay(upstream), status_code=upstream.status_code)
        stream.raw_headers += relayed_headers(upstream, HOP_BY_HOP)
        return stream
    response = Response(content=upstream.content, status_code=upstream.status_code)
    response.raw_headers += relayed_headers(upstream, NOT_RELAYED)
    return response


def relayed_headers(upstream: httpx.Response, dropped: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    """The service's headers for the client, as raw lower-case pairs (each Set-Cookie its own)."""
    return [(name.lower(), value) for name, value in upstream.headers.raw if name.lower() not in dropped]


class _KeepNoCookies(CookieJar):
    """The upstream clients' cookie jar, which keeps nothing.

    An httpx client stores every ``Set-Cookie`` it sees and sends it back with later requests
    that carry no Cookie header: through the gateway's one shared client, one citizen's petition
    cookie or one officer's session would ride along with other people's requests. Cookies pass
    through the gateway in the headers, in both directions, and are never kept.
    """

    def extract_cookies(self, response: HTTPResponse, request: urllib.request.Request) -> None:
        return None

    def set_cookie(self, cookie: Cookie) -> None:
        return None


def upstream_client(*, timeout: httpx.Timeout, limits: httpx.Limits) -> httpx.AsyncClient:
    """An HTTP client for the services: keep-alive pool, no cookie jar (:class:`_KeepNoCookies`)."""
    return httpx.AsyncClient(timeout=timeout, limits=limits, cookies=_KeepNoCookies())
