"""The scoring API checks its methodology and calendar copies when they are due without making a
request wait for the check, except the first (it has no copies yet)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from services.scoring.api import routes
from services.scoring.application.table_copy import Reloads


async def until(condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the state never came"
        await asyncio.sleep(0.005)


def request_for(app: Any) -> Any:
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(scoring=app)))


async def test_only_the_first_request_waits_for_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    release = asyncio.Event()
    checks: list[str] = []

    async def slow_check(app: Any) -> None:
        checks.append("started")
        await release.wait()
        checks.append("done")

    monkeypatch.setattr(routes, "sync_caches", slow_check)
    app = SimpleNamespace(synced=Reloads("test"))
    first = asyncio.create_task(routes.get_app(request_for(app)))
    await until(lambda: checks == ["started"])
    assert not first.done()  # no copies yet: it waits for the check (held until released)
    release.set()
    assert await first is app and checks == ["started", "done"]

    release.clear()
    app.synced.loaded_at -= app.synced.seconds  # a second later
    assert await asyncio.wait_for(routes.get_app(request_for(app)), timeout=5) is app  # answered at once
    assert await asyncio.wait_for(routes.get_app(request_for(app)), timeout=5) is app
    await until(lambda: len(checks) == 3)
    assert checks == ["started", "done", "started"]  # one check in the background, not one per request
    release.set()
    await until(lambda: checks[-1] == "done")


async def test_a_failed_background_check_leaves_the_copies_and_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def failing(app: Any) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("database away")

    monkeypatch.setattr(routes, "sync_caches", failing)
    app = SimpleNamespace(synced=Reloads("test"))
    app.synced.loaded_at = 0.0  # loaded long ago
    assert await routes.get_app(request_for(app)) is app
    await until(lambda: calls == 1)
    app.synced.loaded_at -= app.synced.seconds
    assert await routes.get_app(request_for(app)) is app
    await until(lambda: calls == 2)
