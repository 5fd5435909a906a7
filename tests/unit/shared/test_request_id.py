"""The request-id middleware every app shares: the id on every answer, the guard, the counts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from shared.metrics import HTTP_REQUESTS
from shared.web import REQUEST_ID_HEADER, ApiError, create_app


def refuse_secret(request: Request) -> Response | None:
    if request.scope["path"] == "/secret":
        return JSONResponse({"refused": True}, status_code=400)
    request.scope["path"] = request.scope["path"].replace("/old/", "/new/")
    return None


def app_under_test() -> object:
    app = create_app("rid-test", title="t", checks={}, guard=refuse_secret)

    @app.get("/new/seen")
    async def seen(request: Request) -> dict[str, str]:
        return {"request_id": request.state.request_id}

    @app.get("/missing")
    async def missing() -> None:
        raise ApiError(404, "no such thing")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"
            yield b"data: 2\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return app


def count(status: str) -> float:
    return HTTP_REQUESTS.labels("rid-test", "GET", status)._value.get()


async def test_every_answer_carries_the_request_id_and_is_counted_by_status() -> None:
    transport = httpx.ASGITransport(app=app_under_test())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok_before, missing_before, refused_before = count("200"), count("404"), count("400")
        kept = await client.get("/old/seen", headers={REQUEST_ID_HEADER: "abc-1"})
        assert kept.status_code == 200 and kept.json() == {"request_id": "abc-1"}  # the guard's rewrite routed
        assert kept.headers[REQUEST_ID_HEADER] == "abc-1"
        missing = await client.get("/missing")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert len(missing.headers.get_list(REQUEST_ID_HEADER)) == 1
        refused = await client.get("/secret")
        assert refused.status_code == 400 and refused.headers[REQUEST_ID_HEADER]
        streamed = await client.get("/stream")
        assert streamed.text == "data: 1\n\ndata: 2\n\n" and streamed.headers[REQUEST_ID_HEADER]
    assert count("200") == ok_before + 2
    assert count("404") == missing_before + 1
    assert count("400") == refused_before + 1
