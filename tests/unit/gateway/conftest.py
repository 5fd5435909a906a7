"""A real HTTP service for the proxy tests: records what the gateway sent, answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

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
