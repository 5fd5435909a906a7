"""Rendered pages kept per read-model version: a page renders at most once per version.

The key names everything a page depends on — path, query (language included) — and the page
remembers what it was rendered from: the version of the read model and a coarse clock (the
latest closed month and the "data is N hours old" line move with time, not with data). The clock
is part of that stamp, not of the key: at each new minute the last page is still there to serve
while the new one renders, instead of every reader of the minute's first moment waiting. Concurrent misses of
one key and version share one render. The ETag is a digest of the body, so a browser
revalidating an unchanged page gets a 304.

While events stream in the version moves many times a second, and a reader would wait for a
render on nearly every request. So a page found current less than ``stale_s`` ago (rendered, or
served as current, that recently) is served while the page of the new version renders in the
background (stale-while-revalidate): what a reader sees was the read model's at most ``stale_s``
ago, and a page nobody asked for in that long (a quiet read model, a rarely read page) renders
while its first reader waits. Counting from the page's last confirmation, not from its render,
matters under a stream: a page rendered two seconds ago and current until a moment ago is not
stale, and its next reader used to wait for the render (docs/performance.md, session 14).
Background renders are bounded per key: one at a time, and only once the page is ``rerender_s``
old (half ``stale_s`` by default) — a version moving 50 times a second must not keep the process
rendering back to back (measured: ``GET /`` p50 186 ms under `./sqi bench reporting` before
this bound).

A page past that window whose successor is already rendering (the machine is busy and the
render late) is still served, up to ``max_stale_s`` (5 × ``stale_s`` by default) since it was
last found current: the reader does not queue behind that render. Every page says how old it
is: the ``Age`` header (seconds since it was rendered) and, in its body, the time its data was
computed ("Dữ liệu tính đến").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from shared.metrics import READ_CACHE_ANSWERS

log = logging.getLogger(__name__)

CACHE_CONTROL = "no-cache"  # stored, but revalidated every time: the ETag makes that cheap
CLOCK_S = 60  # what moves with time alone (latest closed month, data age) lags by at most this

Render = Callable[[], Awaitable[Response]]
Stamp = tuple[int, int]  # (clock(), read-model version): both only grow, so the later is larger


@dataclass
class Page:
    body: bytes
    media_type: str
    etag: str
    version: int = 0
    rendered_at: float = 0.0  # time.monotonic()
    clock: int = 0  # clock() when it was rendered
    confirmed_at: float = 0.0  # time.monotonic() when it was last found current (rendered or served)

    @property
    def stamp(self) -> Stamp:
        return (self.clock, self.version)


class PageCache:
    def __init__(
        self,
        max_entries: int = 1024,
        stale_s: float = 1.0,
        max_bytes: int = 64 * 2**20,
        rerender_s: float | None = None,
        max_stale_s: float | None = None,
    ) -> None:
        self._max = max_entries
        self._max_bytes = max_bytes  # any query string is a key: the memory is bounded, not the keys
        self._bytes = 0
        self._stale_s = stale_s
        self._rerender_s = stale_s / 2 if rerender_s is None else rerender_s
        self._max_stale_s = 5 * stale_s if max_stale_s is None else max(max_stale_s, stale_s)
        self._pages: OrderedDict[Hashable, Page] = OrderedDict()
        # One render per key and version at a time; whoever needs it awaits the same task.
        self._rendering: dict[tuple[Hashable, Stamp], asyncio.Task[Page | Response]] = {}
        self.renders = 0  # how many times a page was actually rendered (tests, metrics)

    def __len__(self) -> int:
        return len(self._pages)

    def clear(self) -> None:
        self._pages.clear()
        self._bytes = 0

    async def page(self, key: Hashable, version: int, render: Render) -> Page | Response:
        """The page of ``key`` for ``version``; only a 200 is kept, any other answer goes back as is."""
        stamp = (clock(), version)
        hit = self._pages.get(key)
        if hit is not None:
            self._pages.move_to_end(key)
            now = time.monotonic()
            if hit.stamp >= stamp:
                hit.confirmed_at = now
                READ_CACHE_ANSWERS.labels("pages", "current").inc()
                return hit
            behind = now - hit.confirmed_at  # it was current then: what it shows is at most this old
            rendering = any(k == key for k, _ in self._rendering)
            if behind < self._stale_s:
                # In the background (this reader is served now), one per key at a time.
                if now - hit.rendered_at >= self._rerender_s and not rendering:
                    self._flight(key, stamp, render)
                READ_CACHE_ANSWERS.labels("pages", "previous").inc()
                return hit
            if rendering and behind <= self._max_stale_s:
                READ_CACHE_ANSWERS.labels("pages", "previous").inc()
                return hit  # its successor is on the way: not worth a wait
        READ_CACHE_ANSWERS.labels("pages", "waited").inc()
        result = await asyncio.shield(self._flight(key, stamp, render))
        # Not a page (not a 200): never shared, each request gets its own answer.
        return result if isinstance(result, Page) else await render()

    def _flight(self, key: Hashable, stamp: Stamp, render: Render) -> asyncio.Task[Page | Response]:
        flight = (key, stamp)
        if (task := self._rendering.get(flight)) is None:
            task = asyncio.create_task(self._render(key, stamp, render))
            self._rendering[flight] = task
            task.add_done_callback(lambda t: self._landed(flight, t))
        return task

    def _landed(self, flight: tuple[Hashable, Stamp], task: asyncio.Task[Page | Response]) -> None:
        self._rendering.pop(flight, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("a page did not render", extra={"error": repr(exc)})  # its requests answer it

    async def _render(self, key: Hashable, stamp: Stamp, render: Render) -> Page | Response:
        started = time.monotonic()  # the page is current as of its read, not of its landing
        response = await render()
        self.renders += 1
        if response.status_code != 200 or not isinstance(response.body, bytes):
            return response
        body = bytes(response.body)
        media_type = response.media_type or "text/html"
        page = Page(body, media_type, etag_of(body), stamp[1], time.monotonic(), stamp[0], confirmed_at=started)
        current = self._pages.get(key)
        if current is None or current.stamp <= stamp:  # a slower, older render never wins
            self._bytes += len(body) - (len(current.body) if current else 0)
            self._pages[key] = page
            self._pages.move_to_end(key)
            while self._pages and (len(self._pages) > self._max or self._bytes > self._max_bytes):
                self._bytes -= len(self._pages.popitem(last=False)[1].body)
        return page


def key_of(request: Request, *extra: Hashable) -> Hashable:
    """Path, the whole query (the language switch echoes it), ``extra``."""
    query = tuple(sorted(request.query_params.multi_items()))
    return (request.url.path, query, *extra)


def clock() -> int:
    """What moves with time alone changes at most once per ``CLOCK_S``."""
    return int(time.time() // CLOCK_S)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def respond(request: Request, page: Page | Response) -> Response:
    """The page, or 304 when the browser already holds this very body."""
    if isinstance(page, Response):
        return page
    age = max(0, int(time.monotonic() - page.rendered_at)) if page.rendered_at else 0
    headers = {"ETag": page.etag, "Cache-Control": CACHE_CONTROL, "Age": str(age)}
    if not_modified(request, page.etag):
        return Response(status_code=304, headers=headers)
    return Response(page.body, media_type=page.media_type, headers=headers)
