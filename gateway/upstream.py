"""The gateway's HTTP/1.1 client for the services: kept-alive connections, answers read whole.

httpx spent about half of the gateway's CPU per proxied request (pure-Python h11 parsing, anyio
streams and cancel scopes, its pool's per-request bookkeeping: docs/performance.md, "The gateway
hop" and session 7). This client writes the request in one piece and parses the answer with
httptools (llhttp, the parser uvicorn serves with) in an asyncio protocol. It does only what
forwarding needs: a body already read, an answer read whole (gzip/deflate decoded), a
keep-alive pool per service, one deadline per exchange, and a client span with the trace
context injected, as the httpx instrumentation made, so one trace still runs through the hop.
Event streams (``text/event-stream``) are not its business: they go through httpx's streaming
client (``gateway.proxy``), and an answer that turns out to be one is refused here.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

# An idle connection is dropped before the service's keep-alive timeout (uvicorn: 5 s) could
# close it under a request being sent.
IDLE_S = 4.0
MAX_IDLE = 32  # kept-alive connections per service beyond those in use are closed
_tracer = trace.get_tracer("gateway.upstream")


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


class _Connection(asyncio.Protocol):
    """One kept-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._reset(None)

    def _reset(self, waiter: asyncio.Future[Answer] | None) -> None:
        self._waiter = waiter
        self._head = False
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._headers_done = False
        self._until_close = False
        self.reusable = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the service's answer is not valid HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._until_close and self._headers_done:  # a body delimited by the end of the connection
            self._finish()
        else:
            self._fail(UpstreamError("the service closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if self._status < 200:
            return  # an informational answer (100 Continue): the real one follows
        self._headers_done = True
        for name, value in self._headers:
            if name == b"content-type" and value.split(b";")[0].strip().lower() == b"text/event-stream":
                self._fail(EventStreamAnswer("the service answered with an event stream"))
                self.close()
                return
        names = {name for name, _ in self._headers}
        self._until_close = b"content-length" not in names and b"transfer-encoding" not in names
        if self._head:  # no body follows, whatever the headers say; not reused (the parser expects one)
            self._finish(reusable=False)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:
            self._headers = []
            return
        self._finish(reusable=self._parser.should_keep_alive())

    # the exchange
    def _finish(self, reusable: bool = False) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self.reusable = reusable and not self.closed
        waiter.set_result(Answer(self._status, self._headers, b"".join(self._body)))

    def _fail(self, exc: UpstreamError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    async def exchange(self, request: bytes, *, head: bool) -> Answer:
        if self.transport is None or self.closed:
            raise UpstreamError("the connection to the service is closed")
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._reset(waiter)
        self._head = head
        self.transport.write(request)
        return await waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Upstream:
    """A keep-alive pool to one service (``base_url``: ``http://host:port``)."""

    def __init__(self, base_url: str, *, timeout_s: float, connect_timeout_s: float, max_connections: int) -> None:
        url = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = url.scheme == "https"
        self._authority = url.netloc.encode("ascii")
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: deque[_Connection] = deque()

    async def request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        """One exchange, traced as a client span; :class:`UpstreamError` when there is no answer."""
        url = self.base_url + target
        with _tracer.start_as_current_span(
            method, kind=SpanKind.CLIENT, attributes={"http.method": method, "http.url": url}
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            if carrier:
                replaced = {name.encode() for name in carrier}
                headers = [(n, v) for n, v in headers if n not in replaced]
                headers += [(name.encode(), value.encode("latin-1")) for name, value in carrier.items()]
            answer = await self._request(method, target, headers, body)
            span.set_attribute("http.status_code", answer.status)
            if answer.status >= 400:
                span.set_status(Status(StatusCode.ERROR))
            return answer

    async def _request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        lines = [f"{method} {target} HTTP/1.1\r\n".encode("ascii"), b"host: ", self._authority, b"\r\n"]
        for name, value in headers:
            lines += (name, b": ", value, b"\r\n")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"content-length: %d\r\n" % len(body))
        lines += (b"\r\n", body)
        request = b"".join(lines)
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout_s), self._slots:
                connection = self._idle_connection() or await self._connect()
                answer = await connection.exchange(request, head=method == "HEAD")
        except TimeoutError as exc:
            if connection is not None:
                connection.close()
            raise UpstreamTimeout("the service did not answer in time") from exc
        except BaseException:
            if connection is not None:
                connection.close()  # cancelled or failed mid-exchange: the connection's state is unknown
            raise
        if connection.reusable and len(self._idle) < MAX_IDLE:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        answer.body = _decoded(answer)
        return answer

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used first; older ones age out
            if not connection.closed and now - connection.idle_since < IDLE_S:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(_Connection, self._host, self._port, ssl=self._ssl or None)
        except TimeoutError as exc:
            raise UpstreamTimeout("connecting to the service timed out") from exc
        except OSError as exc:
            raise UpstreamError(f"cannot connect to the service: {exc}") from exc
        return connection

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


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
