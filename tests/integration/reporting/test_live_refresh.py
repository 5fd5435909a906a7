"""Live refresh end to end: a score update in the worker's transaction → NOTIFY → the API's one
listener → a server-sent event through the gateway, within seconds; the stream is cleaned up
when the client leaves, and other answers still pass the gateway whole.

The reporting API (with its lifespan: the listener runs) and the gateway are real uvicorn
servers in this process; the score arrives through the worker's own handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from services.reporting.api.app import create_app
from services.reporting.bootstrap import Reporting, bootstrap
from services.reporting.handlers.messages import on_scores_updated
from services.reporting.settings import ReportingSettings
from shared.dev_tokens import mint_dev_token
from sqi_cli.scratch import free_port_block
from tests.integration.reporting.conftest import message
from tests.integration.reporting.test_read_model import apply, score_body

pytestmark = pytest.mark.integration


async def serve(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        await asyncio.sleep(0.05)
    return server, task


async def until(check: Callable[[], bool], what: str, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within_s} s: {what}")


@pytest.fixture(scope="module")
async def platform(
    settings: ReportingSettings,
    reporting: Reporting,  # the session's: the reference units are seeded
) -> AsyncIterator[tuple[str, Reporting, Any]]:
    live_settings = settings.model_copy(
        update={"reporting_live_min_interval_s": 0.0, "reporting_live_heartbeat_s": 1.0}
    )
    live = bootstrap(live_settings)
    app = create_app(live, telemetry=False)
    base = free_port_block(2, start=29_000)
    gateway = create_gateway(
        GatewaySettings(database_url=settings.database_url, reporting_url=f"http://127.0.0.1:{base + 1}")
    )
    servers = [await serve(app, base + 1), await serve(gateway, base)]
    try:
        await until(lambda: app.state.changes.connected, "the reporting API listens")
        yield f"http://127.0.0.1:{base}", live, app
    finally:
        for server, task in reversed(servers):
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 15)


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) of a server-sent event stream; ("", comment) for comments."""
    name, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield "", line[1:].strip()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data:
            yield name, data
            name, data = "message", ""


async def test_a_score_update_reaches_the_dashboard_stream_through_the_gateway(
    platform: tuple[str, Reporting, Any],
) -> None:
    base, reporting, app = platform
    token = mint_dev_token(GatewaySettings(), sub="lanh-dao-ct", role="leader", unit="CT")
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        assert (await client.get("/dashboard/live", headers={"Accept": "text/event-stream"})).status_code == 401
        async with client.stream("GET", "/dashboard/live", headers=headers) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            seen = events(stream)
            kind, _ = await asyncio.wait_for(anext(seen), 10)
            assert kind == "ready" and app.state.changes.clients == 1
            sent = time.monotonic()
            body = score_body("P13", 74.5, 13, period="2025-06")
            await apply(reporting, on_scores_updated, message("scoring.scores-updated.v3", body))
            kind, data = await asyncio.wait_for(anext(seen), 10)
            while kind == "":  # heartbeats may come first
                kind, data = await asyncio.wait_for(anext(seen), 10)
            assert kind == "change" and '"scores"' in data and time.monotonic() - sent < 5
            # Heartbeats keep the connection alive while nothing changes (1 s here).
            kind, data = await asyncio.wait_for(anext(seen), 5)
            assert (kind, data) == ("", "keep-alive")
        # The client left: the gateway closed its upstream and the API forgot the client.
        await until(lambda: app.state.changes.clients == 0, "the stream is cleaned up")
        # Ordinary answers still come whole through the same gateway.
        page = await client.get("/", params={"period": "2025-06"})
        assert page.status_code == 200 and "74.5" in page.text and "content-length" in page.headers


async def test_the_streams_end_when_the_api_shuts_down(platform: tuple[str, Reporting, Any]) -> None:
    base, _, app = platform
    token = mint_dev_token(GatewaySettings(), sub="lanh-dao-ct", role="leader", unit="CT")
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("GET", "/dashboard/live", headers=headers) as stream,
    ):
        seen = events(stream)
        assert (await asyncio.wait_for(anext(seen), 10))[0] == "ready"
        app.state.changes.close()  # what a SIGTERM to uvicorn triggers (live.close_on_server_exit)
        with pytest.raises(StopAsyncIteration):
            while True:
                await asyncio.wait_for(anext(seen), 10)
