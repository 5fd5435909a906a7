"""The reporting app: ``uvicorn services.reporting.api.app:create_app --factory``.

Public ranking (``/``, ``/ranking/…``), the staff dashboard (``/dashboard…``), warnings and
reports (``/api/v1/warnings``, ``/api/v1/reports/…``), all read from reporting's own schema.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.reporting.api.pages import router as pages_router
from services.reporting.api.routes import router
from services.reporting.bootstrap import SERVICE, Reporting, bootstrap
from services.reporting.views import ReadModel, refresh_methodologies
from shared.db import database_ready
from shared.telemetry import configure_telemetry
from shared.web import create_app as create_service_app

STATIC_DIR = Path(__file__).parent / "static"


async def _keep_methodologies(app: Reporting, model: ReadModel) -> None:
    while True:
        if await refresh_methodologies(app):
            model.invalidate()
            await asyncio.sleep(app.settings.reporting_methodology_refresh_s)
        else:  # scoring not up yet (or down): try again soon, pages answer from the cache
            await asyncio.sleep(5)


def create_app(reporting: Reporting | None = None, *, telemetry: bool = True) -> FastAPI:
    reporting = reporting or bootstrap()
    if telemetry:
        configure_telemetry(SERVICE, log_level=reporting.settings.log_level)
    model = ReadModel(reporting)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_keep_methodologies(reporting, model))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await reporting.engine.dispose()

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
    app.state.internal_token = reporting.settings.internal_token
    app.include_router(router)
    app.include_router(pages_router)
    app.mount("/static/reporting", StaticFiles(directory=STATIC_DIR), name="reporting-static")
    return app
