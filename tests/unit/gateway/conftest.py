"""A real HTTP service for the proxy tests: records what the gateway sent, answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from sqi_cli.scratch import free_port_block


@dataclass
class Seen:
    method: str
    raw_path: bytes
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    client_port: int

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def json_answer(seen: Seen) -> Answer:
    return 200, [(b"content-type", b"application/json")], b'{"ok": true}'


@dataclass
class Service:
    base_url: str
    requests: list[Seen] = field(default_factory=list)
    answer: Callable[[Seen], Answer] = json_answer
    delay_s: float = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        client_port = scope["client"][1]
        seen = Seen(scope["method"], scope["raw_path"], scope["query_string"], scope["headers"], body, client_port)
        self.requests.append(seen)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status, headers, content = self.answer(seen)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    port = free_port_block(1, start=29_500)
    service = Service(f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(service, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        assert asyncio.get_running_loop().time() < deadline, "the test service did not start"
        await asyncio.sleep(0.01)
    yield service
    server.should_exit = True
    await task


@pytest.fixture
async def gateway_and_settings(service: Service) -> AsyncIterator[tuple[httpx.AsyncClient, GatewaySettings]]:
    """The gateway with default settings in front of ``service`` (every upstream), called from a
    fixed client address."""
    settings = GatewaySettings()
    app = create_app(settings)
    pool = Upstream(service.base_url, timeout_s=5, connect_timeout_s=3, max_connections=10)
    app.state.gateway.services = dict.fromkeys(app.state.gateway.services, pool)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("198.51.100.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client, settings
    await pool.aclose()
