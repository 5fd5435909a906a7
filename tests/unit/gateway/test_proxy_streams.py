"""The proxy reads ordinary answers whole and relays an event stream as it comes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi.responses import StreamingResponse
from starlette.requests import Request

from gateway.proxy import forward, wants_event_stream
from shared.identity import ANONYMOUS


def incoming(path: str = "/dashboard/live", accept: str = "text/event-stream") -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"accept", accept.encode())],
    }
    request = Request(scope)
    request.state.request_id = "req-1"
    return request


class Upstream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


async def proxy(client: httpx.AsyncClient, request: Request) -> object:
    return await forward(
        client,
        base_url="http://reporting",
        request=request,
        body=b"",
        principal=ANONYMOUS,
        client_address="127.0.0.1",
        internal_token="t",
    )


async def test_an_ordinary_answer_is_read_whole_and_its_connection_released() -> None:
    body = Upstream([b'{"a": ', b"1}"])
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "application/json"}, stream=body)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await proxy(client, incoming("/api/v1/warnings", "application/json"))
    assert not isinstance(response, StreamingResponse)
    assert response.body == b'{"a": 1}' and body.closed  # type: ignore[attr-defined]


async def test_an_event_stream_is_relayed_chunk_by_chunk_and_closed() -> None:
    body = Upstream([b"event: ready\ndata: {}\n\n", b": keep-alive\n\n"])
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream; charset=utf-8"}, stream=body)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await proxy(client, incoming())
        assert isinstance(response, StreamingResponse) and not body.closed
        chunks = [c async for c in response.body_iterator]
    assert chunks == [b"event: ready\ndata: {}\n\n", b": keep-alive\n\n"] and body.closed
    assert response.headers["content-type"].startswith("text/event-stream")


def test_only_an_event_source_request_takes_the_stream_pool() -> None:
    assert wants_event_stream(incoming())
    assert not wants_event_stream(incoming(accept="text/html"))
