"""What every process has alive once started is frozen out of the cyclic collector's reach."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shared.web import create_app


async def test_an_app_freezes_its_heap_after_its_own_start_up_and_still_shuts_down() -> None:
    steps: list[str] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        steps.append("started")
        yield
        steps.append("stopped")

    app = create_app("test", title="test", checks={}, lifespan=lifespan)
    gc.unfreeze()
    async with app.router.lifespan_context(app):
        assert steps == ["started"]
        assert gc.get_freeze_count() > 0  # the app and everything built before it
    assert steps == ["started", "stopped"]


async def test_an_app_without_a_lifespan_freezes_too() -> None:
    app = create_app("test", title="test", checks={})
    gc.unfreeze()
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
