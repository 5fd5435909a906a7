"""HEAD where a service takes GET (RFC 9110 §9.1, §9.3.2), in every app built by shared.web.

FastAPI's routes, unlike Starlette's, do not take HEAD with GET: a monitor's or a link checker's
HEAD on a service page (``/``, ``/api/v1/scores``, ``/rate``, ``/healthz``) was a 405.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from fastapi import Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from shared.web import REQUEST_ID_HEADER, create_app


def app_with_routes() -> httpx.AsyncClient:
    app = create_app("head-test", title="head test", checks={})

    @app.get("/page")
    async def page() -> PlainTextResponse:
        return PlainTextResponse("trang chủ", headers={"Cache-Control": "no-store"})

    @app.post("/write")
    async def write() -> dict[str, str]:
        return {"ok": "yes"}

    @app.api_route("/own-head", methods=["GET", "HEAD"])
    async def own_head() -> Response:
        return Response(b"body", headers={"X-Own": "1"})

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_head_on_a_get_route_is_that_get_without_its_body() -> None:
    async with app_with_routes() as client:
        get, head = await client.get("/page"), await client.head("/page")
        assert (get.status_code, head.status_code) == (200, 200)
        assert head.content == b""
        assert head.headers["content-length"] == str(len(get.content)) == str(len("trang chủ".encode()))
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["cache-control"] == "no-store"
        assert head.headers[REQUEST_ID_HEADER]
        health = await client.head("/healthz")
        assert health.status_code == 200 and health.content == b""


async def test_head_where_no_get_is_taken_stays_405_or_404() -> None:
    async with app_with_routes() as client:
        refused = await client.head("/write")
        assert refused.status_code == 405 and refused.headers["allow"] == "POST"
        assert (await client.head("/nowhere")).status_code == 404


async def test_a_route_that_takes_head_itself_gets_it_unchanged() -> None:
    async with app_with_routes() as client:
        head = await client.head("/own-head")
        assert head.status_code == 200 and head.headers["x-own"] == "1"


async def test_head_on_a_stream_ends_at_once_and_stops_the_stream() -> None:
    """A stream (the live refresh) sends its first chunk late or never: a HEAD that waited for it
    held its keep-alive connection, the next request on it waiting behind."""
    app = create_app("head-stream-test", title="head stream test", checks={})
    stopped = asyncio.Event()

    async def forever() -> AsyncIterator[bytes]:
        try:
            await asyncio.Event().wait()  # never a chunk
            yield b""
        finally:
            stopped.set()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(forever(), media_type="text/event-stream")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        head = await asyncio.wait_for(client.head("/stream"), timeout=30)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/event-stream")
        await asyncio.wait_for(stopped.wait(), timeout=30)
