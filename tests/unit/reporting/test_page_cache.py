"""The page cache: one render for concurrent misses, only 200s kept, ETag and 304."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.responses import HTMLResponse, Response
from starlette.requests import Request

from services.reporting.api import page_cache
from services.reporting.api.page_cache import Page, PageCache, etag_of, not_modified, respond


@pytest.fixture(autouse=True)
def still_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``clock()`` moves with the wall clock once a minute: a test whose pages crossed a minute's
    boundary saw them go stale (a failure by luck, one run in a few hundred). Pinned here; the
    test of the clock moves it itself."""
    now = page_cache.clock()
    monkeypatch.setattr(page_cache, "clock", lambda: now)


def request(headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": raw})


async def test_concurrent_misses_share_one_render() -> None:
    cache = PageCache(stale_s=0)
    calls = 0

    async def render() -> Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return HTMLResponse("<p>xin chào</p>")

    pages = await asyncio.gather(*(cache.page("k", 1, render) for _ in range(10)))
    assert calls == 1 and all(isinstance(p, Page) and p.body == "<p>xin chào</p>".encode() for p in pages)
    await cache.page("k", 1, render)
    assert calls == 1 and cache.renders == 1
    await cache.page("k", 2, render)  # a new version of the read model: rendered again
    assert calls == 2


async def test_only_a_200_is_kept_and_the_cache_is_bounded() -> None:
    cache = PageCache(max_entries=2)

    async def missing() -> Response:
        return HTMLResponse("no", status_code=404)

    assert isinstance(await cache.page("gone", 1, missing), Response) and len(cache) == 0
    for key in ("a", "b", "c"):
        await cache.page(key, 1, lambda key=key: _ok(key))
    assert len(cache) == 2


async def test_a_young_page_is_served_while_the_new_version_renders() -> None:
    cache = PageCache(stale_s=5.0, rerender_s=0)
    await cache.page("k", 1, lambda: _ok("v1"))
    release = asyncio.Event()

    async def slow_v2() -> Response:
        await release.wait()
        return HTMLResponse("v2")

    stale = await cache.page("k", 2, slow_v2)
    assert isinstance(stale, Page) and stale.body == b"v1"  # at once, not after the render
    again = await cache.page("k", 2, slow_v2)  # one background render per version
    assert isinstance(again, Page) and again.body == b"v1"
    release.set()
    for _ in range(100):
        page = await cache.page("k", 2, slow_v2)
        if isinstance(page, Page) and page.body == b"v2":
            break
        await asyncio.sleep(0.01)
    assert isinstance(page, Page) and page.body == b"v2" and cache.renders == 2
    old = await cache.page("k", 1, lambda: _ok("never"))  # an older version never replaces it
    assert isinstance(old, Page) and old.body == b"v2"


async def test_a_page_served_as_current_a_moment_ago_is_served_while_its_successor_renders() -> None:
    """Staleness counts from when the page was last found current, not from its render: under a
    stream a page rendered long ago but read a moment ago is not stale, and its next reader does
    not wait; a page nobody read for longer than the window is rendered while its reader waits."""
    cache = PageCache(stale_s=0.2, rerender_s=0)
    await cache.page("read", 1, lambda: _ok("v1"))
    await cache.page("quiet", 1, lambda: _ok("v1"))
    await asyncio.sleep(0.3)  # both rendered longer ago than the window
    assert (await cache.page("read", 1, lambda: _ok("never"))).body == b"v1"  # type: ignore[union-attr]
    release = asyncio.Event()

    async def held(text: str) -> Response:
        await release.wait()
        return HTMLResponse(text)

    read = await asyncio.wait_for(cache.page("read", 2, lambda: held("v2")), 1)
    assert isinstance(read, Page) and read.body == b"v1"  # current 0 s ago: served, v2 renders behind
    quiet = asyncio.ensure_future(cache.page("quiet", 2, lambda: held("v2")))
    await asyncio.sleep(0.05)
    assert not quiet.done()  # last current 0.3 s ago: its reader waits for v2
    release.set()
    page = await quiet
    assert isinstance(page, Page) and page.body == b"v2"


async def test_an_old_page_is_not_served_stale() -> None:
    cache = PageCache(stale_s=0)
    await cache.page("k", 1, lambda: _ok("v1"))
    fresh = await cache.page("k", 2, lambda: _ok("v2"))
    assert isinstance(fresh, Page) and fresh.body == b"v2"


async def _ok(text: str) -> Response:
    return HTMLResponse(text)


def test_if_none_match_gives_304_only_for_the_same_body() -> None:
    page = Page(b"body", "text/html", etag_of(b"body"))
    assert respond(request(), page).status_code == 200
    assert respond(request({"If-None-Match": page.etag}), page).status_code == 304
    assert respond(request({"If-None-Match": f'"other", W/{page.etag}'}), page).status_code == 304
    assert respond(request({"If-None-Match": etag_of(b"older")}), page).status_code == 200
    assert not_modified(request({"If-None-Match": "*"}), page.etag)
    assert respond(request(), page).headers["cache-control"] == "no-cache"


async def test_the_memory_is_bounded_whatever_the_keys() -> None:
    cache = PageCache(max_bytes=10)
    for key in ("a", "b", "c"):
        await cache.page(key, 1, lambda key=key: _ok(key * 6))
    assert len(cache) == 1  # 6 bytes each: only the latest fits


async def test_background_renders_are_one_per_key_and_not_before_the_page_is_half_stale() -> None:
    """A version moving many times a second does not keep the process rendering back to back."""
    cache = PageCache(stale_s=0.4)  # re-render once a page is 0.2 s old
    await cache.page("k", 1, lambda: _ok("v1"))
    calls = 0
    release = asyncio.Event()

    async def slow(text: str) -> Response:
        nonlocal calls
        calls += 1
        await release.wait()
        return HTMLResponse(text)

    young = await cache.page("k", 2, lambda: slow("v2"))  # too young to re-render
    assert isinstance(young, Page) and young.body == b"v1" and calls == 0
    await asyncio.sleep(0.25)
    for v in (3, 4, 5):  # half stale: one background render, whatever the versions asked
        page = await cache.page("k", v, lambda v=v: slow(f"v{v}"))
        assert isinstance(page, Page) and page.body == b"v1"
    await asyncio.sleep(0)
    assert calls == 1
    release.set()


async def test_a_page_past_the_window_is_served_while_its_successor_renders_up_to_a_bound() -> None:
    """A late render (a busy machine) does not make readers queue behind it, within max_stale_s."""
    cache = PageCache(stale_s=0.1, max_stale_s=0.4)
    await cache.page("k", 1, lambda: _ok("v1"))
    release = asyncio.Event()

    async def late(text: str) -> Response:
        await release.wait()
        return HTMLResponse(text)

    await asyncio.sleep(0.06)  # half stale: the next reader starts the successor in the background
    young = await cache.page("k", 2, lambda: late("v2"))
    assert isinstance(young, Page) and young.body == b"v1"
    await asyncio.sleep(0.1)  # past the window, the successor still rendering: still served
    past = await cache.page("k", 3, lambda: late("v3"))
    assert isinstance(past, Page) and past.body == b"v1"
    assert respond(request(), past).headers["age"] == "0"  # whole seconds since it was rendered
    await asyncio.sleep(0.35)  # past the bound: this reader waits for a page of its version
    waiting = asyncio.ensure_future(cache.page("k", 3, lambda: late("v3")))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    release.set()
    page = await waiting
    assert isinstance(page, Page) and page.body == b"v3"


async def test_a_new_minute_serves_the_last_page_while_the_next_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    """What moves with time (the latest closed month) re-renders, without readers waiting for it."""
    minute = [100]
    monkeypatch.setattr(page_cache, "clock", lambda: minute[0])
    cache = PageCache(stale_s=5.0, rerender_s=0)
    await cache.page("k", 7, lambda: _ok("10:00"))
    minute[0] += 1
    release = asyncio.Event()

    async def next_minute() -> Response:
        await release.wait()
        return HTMLResponse("10:01")

    old = await cache.page("k", 7, next_minute)  # same data, a new minute
    assert isinstance(old, Page) and old.body == b"10:00"
    release.set()
    for _ in range(100):
        page = await cache.page("k", 7, next_minute)
        if isinstance(page, Page) and page.body == b"10:01":
            break
        await asyncio.sleep(0.01)
    assert isinstance(page, Page) and page.body == b"10:01" and cache.renders == 2
