"""Forwarding a request to its service with the verified identity attached."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import Request
from fastapi.responses import Response

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
            upstream = await client.request(request.method, url, content=body, headers=headers)
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
    response_headers.pop("content-encoding", None)
    return Response(content=upstream.content, status_code=upstream.status_code, headers=response_headers)
