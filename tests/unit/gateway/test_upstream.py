"""The gateway's client for the services (gateway.upstream), against a real HTTP server."""

from __future__ import annotations

import pytest

from gateway import upstream as upstream_module
from gateway.upstream import Upstream, UpstreamError, UpstreamTimeout
from sqi_cli.scratch import free_port_block
from tests.unit.gateway.conftest import Seen, Service


def pool(base_url: str, timeout_s: float = 5) -> Upstream:
    return Upstream(base_url, timeout_s=timeout_s, connect_timeout_s=3, max_connections=4)


async def test_requests_one_after_another_reuse_one_connection(service: Service) -> None:
    client = pool(service.base_url)
    for n in range(3):
        answer = await client.request("GET", f"/a?n={n}", [(b"accept", b"application/json")], b"")
        assert (answer.status, answer.body) == (200, b'{"ok": true}')
        assert (b"content-type", b"application/json") in answer.headers
    assert len({r.client_port for r in service.requests}) == 1
    await client.aclose()


async def test_an_idle_connection_is_not_reused_past_its_age(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_module, "IDLE_S", 0.0)
    client = pool(service.base_url)
    for _ in range(2):
        assert (await client.request("GET", "/a", [], b"")).status == 200
    assert len({r.client_port for r in service.requests}) == 2
    await client.aclose()


async def test_a_chunked_answer_a_head_and_a_closed_connection_are_each_read_right(service: Service) -> None:
    def answer(seen: Seen) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if seen.raw_path == b"/close":
            return 404, [(b"connection", b"close"), (b"content-length", b"4")], b"gone"
        if seen.method == "HEAD":
            return 200, [(b"content-length", b"100")], b""
        return 200, [(b"content-type", b"text/plain")], b"no length given: chunked"

    service.answer = answer
    client = pool(service.base_url)
    chunked = await client.request("GET", "/chunked", [], b"")
    assert chunked.body == b"no length given: chunked"
    head = await client.request("HEAD", "/head", [], b"")
    assert (head.status, head.body) == (200, b"")
    closed = await client.request("GET", "/close", [], b"")
    assert (closed.status, closed.body) == (404, b"gone")
    again = await client.request("GET", "/chunked", [], b"")
    assert again.body == b"no length given: chunked"
    await client.aclose()


async def test_no_answer_in_time_is_a_timeout_and_the_next_request_is_answered(service: Service) -> None:
    service.delay_s = 0.5
    client = pool(service.base_url, timeout_s=0.1)
    with pytest.raises(UpstreamTimeout):
        await client.request("GET", "/slow", [], b"")
    service.delay_s = 0
    assert (await client.request("GET", "/fast", [], b"")).status == 200
    await client.aclose()


async def test_a_service_that_does_not_listen_is_an_error() -> None:
    client = pool(f"http://127.0.0.1:{free_port_block(1, start=29_700)}")
    with pytest.raises(UpstreamError):
        await client.request("POST", "/api/v1/events", [], b"{}")


async def test_an_interim_100_continue_is_skipped(service: Service) -> None:
    client = pool(service.base_url)
    answer = await client.request("POST", "/api/v1/events", [(b"expect", b"100-continue")], b'{"event_id": "e"}')
    assert (answer.status, answer.body) == (200, b'{"ok": true}')
    assert service.requests[0].body == b'{"event_id": "e"}'
    await client.aclose()
