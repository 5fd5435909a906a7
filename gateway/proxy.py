"""Forwarding a request to its service with the verified identity attached.

Answers are read whole and passed on, except an event stream (``text/event-stream``, the
dashboard's live refresh): that one is relayed chunk by chunk as it comes, and the upstream
connection is closed as soon as the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from shared.identity import CLIENT_ADDRESS_HEADER, INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal
from shared.web import REQUEST_ID_HEADER, error_response

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
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


async def forward(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    request: Request,
    body: bytes,
    principal: Principal,
    client_address: str,
    internal_token: str,
) -> Response:
    headers = {
        k: v
        for k, v in request.headers.items()
        if k.lower() not in HOP_BY_HOP
        and not k.lower().startswith("x-sqi-")
        and k.lower() not in ("authorization", "x-api-key")
    }
    headers[PRINCIPAL_HEADER] = encode_principal(principal)
    headers[INTERNAL_TOKEN_HEADER] = internal_token
    headers[CLIENT_ADDRESS_HEADER] = client_address
    headers[REQUEST_ID_HEADER] = request.state.request_id
    # Exactly the path the gateway routed on (gateway.paths), encoded, and the query as sent.
    url = base_url.rstrip("/") + request.scope["raw_path"].decode("ascii")
    query = request.scope.get("query_string", b"").decode("latin-1")
    if query:
        url += "?" + query
    attempts = 3 if request.method in IDEMPOTENT else 1
    for attempt in range(attempts):
        try:
            upstream = await client.send(
                client.build_request(request.method, url, content=body, headers=headers), stream=True
            )
            if not is_event_stream(upstream):
                try:
                    await upstream.aread()  # every other answer is read whole, as before
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
            # Only connection failures are retried, and only for idempotent methods.
            if attempt + 1 == attempts:
                return error_response(503, "the service is unavailable; try again shortly")
            await asyncio.sleep(0.2 * (attempt + 1))
    response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
    if is_event_stream(upstream):
        # Relayed raw (not decoded): any content-encoding stays as the service sent it.
        return StreamingResponse(relay(upstream), status_code=upstream.status_code, headers=response_headers)
    response_headers.pop("content-encoding", None)
    return Response(content=upstream.content, status_code=upstream.status_code, headers=response_headers)
