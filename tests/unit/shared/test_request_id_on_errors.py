"""A 500 carries the request id its body and its log line name, in every app built by shared.web.

Starlette answers an unhandled error in ``ServerErrorMiddleware``, outside every middleware added
with ``add_middleware``: while the request-id middleware was one of those, the 500 left without
``X-Request-ID`` (and was never counted by status) although its body points to the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import Request
from fastapi.responses import Response

from shared.metrics import HTTP_REQUESTS
from shared.web import REQUEST_ID_HEADER, create_app

APP_NAME = "rid-errors-test"


class Records(logging.Handler):
    """The records of one logger, kept in a list (root's handlers are the app's telemetry's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def web_log() -> Iterator[Records]:
    records = Records()
    logger = logging.getLogger("shared.web")
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)


def fails_in_the_guard(request: Request) -> Response | None:
    if request.scope["path"] == "/guard-bug":
        raise RuntimeError("a bug in the guard")
    return None


def failing_app() -> httpx.AsyncClient:
    app = create_app(APP_NAME, title="t", checks={}, guard=fails_in_the_guard)

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def count_500() -> float:
    return HTTP_REQUESTS.labels(APP_NAME, "GET", "500")._value.get()


@pytest.mark.parametrize("path", ["/bug", "/guard-bug"])
@pytest.mark.parametrize(
    ("presented", "kept"), [("abc-1.x:y", True), ("a b", False), (None, False)], ids=["safe", "unsafe", "none"]
)
async def test_a_500_carries_the_request_id_its_body_and_log_line_name(
    web_log: Records, path: str, presented: str | None, kept: bool
) -> None:
    before = count_500()
    async with failing_app() as client:
        answer = await client.get(path, headers={REQUEST_ID_HEADER: presented} if presented else {})
    assert answer.status_code == 500, answer.text
    error = answer.json()["error"]
    assert error["code"] == "internal" and set(error) == {"code", "message", "details"}
    [request_id] = answer.headers.get_list(REQUEST_ID_HEADER)  # one, as on every answer
    assert (request_id == presented) is kept and 1 <= len(request_id) <= 64
    assert request_id in error["message"]  # the body names the id a caller reports
    logged = [r for r in web_log.records if r.getMessage() == "unhandled error"]
    assert [getattr(r, "request_id", None) for r in logged] == [request_id]
    assert count_500() == before + 1  # a 500 is counted by status like any answer
