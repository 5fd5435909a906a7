"""The reporting app: ``uvicorn services.reporting.api.app:create_app --factory``.

Public ranking (``/``, ``/ranking/…``), the staff dashboard (``/dashboard…``), warnings and
reports (``/api/v1/warnings``, ``/api/v1/reports/…``), all read from reporting's own schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.reporting.api.live import ChangeFeed, close_on_server_exit
from services.reporting.api.page_cache import PageCache
from services.reporting.api.pages import router as pages_router
from services.reporting.api.render_pool import RenderPool
from services.reporting.api.routes import router
from services.reporting.bootstrap import SERVICE, Reporting, bootstrap
from services.reporting.views import ReadModel, refresh_methodologies
from shared.background import cancel_and_wait
from shared.db import database_ready
from shared.telemetry import configure_telemetry
from shared.web import create_app as create_service_app

STATIC_DIR = Path(__file__).parent / "static"


async def _keep_methodologies(app: Reporting, model: ReadModel, pages: PageCache) -> None:
    while True:
        if await refresh_methodologies(app):
            model.invalidate()
            pages.clear()  # the methodology page and group names come from these documents
            await asyncio.sleep(app.settings.reporting_methodology_refresh_s)
        else:  # scoring not up yet (or down): try again soon, pages answer from the cache
            await asyncio.sleep(5)


def create_app(reporting: Reporting | None = None, *, telemetry: bool = True) -> FastAPI:
    reporting = reporting or bootstrap()
    if telemetry:
        configure_telemetry(SERVICE, log_level=reporting.settings.log_level)
    model = ReadModel(reporting)
    pages = PageCache(stale_s=reporting.settings.reporting_page_stale_s)
    renderer = RenderPool()

    def on_change(scope: str) -> None:
        if scope == "units":
            model.invalidate()  # the unit tree is cached in memory: read it anew
        elif scope == "scores":
            model.forget_recent()  # the period list and the latest computation time

    changes = ChangeFeed(
        reporting.settings.listen_dsn,
        reporting.sessions,
        on_change=on_change,
        max_clients=reporting.settings.reporting_live_max_clients,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await renderer.start()
        tasks = [
            asyncio.create_task(_keep_methodologies(reporting, model, pages)),
            asyncio.create_task(changes.run()),
            asyncio.create_task(close_on_server_exit(changes)),
        ]
        yield
        changes.close()
        await cancel_and_wait(*tasks)
        renderer.close()
        await reporting.dispose()

    async def db_ready() -> bool:
        return await database_ready(reporting.engine)

    app = create_service_app(
        SERVICE,
        title="SQI reporting",
        description="Public ranking, leadership dashboard, warnings (cảnh báo) and reports (báo cáo).",
        checks={"database": db_ready},
        lifespan=lifespan,
    )
    app.state.reporting = reporting
    app.state.read_model = model
    app.state.pages = pages
    app.state.renderer = renderer
    app.state.changes = changes
    app.state.internal_token = reporting.settings.internal_token
    app.include_router(router)
    app.include_router(pages_router)
    app.mount("/static/reporting", StaticFiles(directory=STATIC_DIR), name="reporting-static")
    return app
