"""The proxy reads ordinary answers whole and relays an event stream as it comes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi.responses import StreamingResponse
from starlette.requests import Request

from gateway.proxy import forward, forward_streaming, wants_event_stream
from gateway.upstream import Upstream
from shared.identity import ANONYMOUS
from tests.unit.gateway.conftest import Seen, Service


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


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


async def proxy(client: httpx.AsyncClient, request: Request, base_url: str = "http://reporting") -> object:
    return await forward(
        Upstream(base_url, timeout_s=5, connect_timeout_s=3, max_connections=10),
        client,
        request=request,
        body=b"",
        principal=ANONYMOUS,
        client_address="127.0.0.1",
        internal_token="t",
    )


async def test_an_ordinary_answer_to_the_stream_client_is_read_whole_and_its_connection_released() -> None:
    body = Chunks([b'{"a": ', b"1}"])
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "application/json"}, stream=body)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await forward_streaming(
            client, url="http://reporting/dashboard/live", request=incoming(), headers=[]
        )
    assert not isinstance(response, StreamingResponse)
    assert response.body == b'{"a": 1}' and body.closed  # type: ignore[attr-defined]


async def test_an_event_stream_is_relayed_chunk_by_chunk_and_closed() -> None:
    body = Chunks([b"event: ready\ndata: {}\n\n", b": keep-alive\n\n"])
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


async def test_an_event_stream_answered_to_a_plain_get_is_relayed_through_the_stream_client(service: Service) -> None:
    """The service's client refuses to read a stream whole; the GET goes again through the stream pool."""

    def answer(_: Seen) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return 200, [(b"content-type", b"text/event-stream")], b"event: ready\ndata: {}\n\n"

    service.answer = answer
    async with httpx.AsyncClient() as client:
        response = await proxy(client, incoming(accept="*/*"), base_url=service.base_url)
        assert isinstance(response, StreamingResponse)
        chunks = [c async for c in response.body_iterator]
    assert b"".join(chunks) == b"event: ready\ndata: {}\n\n"  # type: ignore[arg-type]
    assert len(service.requests) == 2
