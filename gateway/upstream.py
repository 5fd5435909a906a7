"""The gateway's HTTP client for the services: kept-alive connections, answers read whole.

httpx spent about half of the gateway's CPU per proxied request (pure-Python h11 parsing, anyio
streams and cancel scopes, its pool's per-request bookkeeping: docs/performance.md, "The gateway
hop" and session 7). aiohttp's client does the same exchange for a quarter of httpx's CPU (its
parser is compiled; a GET of a 20-KB answer, in process: ≈ 200 µs against ≈ 800 µs). This module
is what forwarding needs from it: a body already read, an answer read whole (gzip/deflate decoded,
as httpx did), a keep-alive pool per service, one deadline per exchange, and a client span with
the trace context injected, as the httpx instrumentation made, so one trace still runs through the
hop. Event streams (``text/event-stream``) are not its business: they go through httpx's
streaming client (``gateway.proxy``), and an answer that turns out to be one is refused here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import aiohttp
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

# An idle connection is dropped before the service's keep-alive timeout (uvicorn: 5 s) could
# close it under a request being sent.
IDLE_S = 4.0
_tracer = trace.get_tracer("gateway.upstream")
# What aiohttp would add on its own: the gateway sends the caller's headers, nothing else (the
# encoding is asked for only if the caller asked; a body without a type gets none).
_NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class UpstreamError(Exception):
    """The service could not be reached, or closed the connection before answering."""


class UpstreamTimeout(UpstreamError):
    """No whole answer within the deadline (connecting, waiting for a connection, or reading)."""


class EventStreamAnswer(UpstreamError):
    """The service answered with an event stream, which this client does not relay."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]  # as received, names lower-cased
    body: bytes


class Upstream:
    """A keep-alive pool to one service (``base_url``: ``http://host:port``)."""

    def __init__(self, base_url: str, *, timeout_s: float, connect_timeout_s: float, max_connections: int) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None  # made in the event loop that uses it

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=IDLE_S, ttl_dns_cache=None, use_dns_cache=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,  # decoded below, as httpx did: gzip and deflate only
                skip_auto_headers=_NOT_ADDED,
                cookie_jar=aiohttp.DummyCookieJar(),  # the gateway relays cookies, it never keeps them
            )
        return self._session

    async def request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        """One exchange, traced as a client span; :class:`UpstreamError` when there is no answer."""
        url = self.base_url + target
        with _tracer.start_as_current_span(
            method, kind=SpanKind.CLIENT, attributes={"http.method": method, "http.url": url}
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            replaced = {name.encode() for name in carrier}
            sent = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers if n not in replaced]
            sent += carrier.items()
            answer = await self._request(method, url, sent, body)
            span.set_attribute("http.status_code", answer.status)
            if answer.status >= 400:
                span.set_status(Status(StatusCode.ERROR))
            return answer

    async def _request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
        data = body if body or method in ("POST", "PUT", "PATCH") else None
        try:
            async with self._client().request(
                method, url, headers=headers, data=data, allow_redirects=False, skip_auto_headers=_NOT_ADDED
            ) as response:
                if response.content_type == "text/event-stream":
                    response.close()
                    raise EventStreamAnswer("the service answered with an event stream")
                content = await response.read()
                raw = [(name.lower(), value) for name, value in response.raw_headers]
                answer = Answer(response.status, raw, content)
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            raise UpstreamTimeout("the service did not answer in time") from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(f"cannot connect to the service: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the service's answer could not be read: {exc}") from exc
        answer.body = _decoded(answer)
        return answer

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _decoded(answer: Answer) -> bytes:
    """The body without its gzip/deflate content-encoding (the header is then dropped too)."""
    encoding = next((v for n, v in answer.headers if n == b"content-encoding"), None)
    if encoding is None or not answer.body:
        return answer.body
    if encoding.strip().lower() == b"gzip":
        body = zlib.decompress(answer.body, wbits=zlib.MAX_WBITS | 16)
    elif encoding.strip().lower() == b"deflate":
        body = zlib.decompress(answer.body)
    else:
        return answer.body  # relayed as sent, with its header
    answer.headers = [(n, v) for n, v in answer.headers if n != b"content-encoding"]
    return body
