"""The ingest API app: ``uvicorn services.ingest.api.app:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.ingest.api.routes import router
from services.ingest.bootstrap import SERVICE, Ingest, bootstrap
from shared.db import database_ready
from shared.telemetry import configure_telemetry
from shared.web import create_app as create_service_app


def create_app(ingest: Ingest | None = None) -> FastAPI:
    ingest = ingest or bootstrap()
    configure_telemetry(SERVICE, log_level=ingest.settings.log_level)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await ingest.dispose()

    async def db_ready() -> bool:
        return await database_ready(ingest.engine)

    app = create_service_app(SERVICE, title="SQI ingest", checks={"database": db_ready}, lifespan=lifespan)
    app.state.ingest = ingest
    app.state.internal_token = ingest.settings.internal_token
    app.include_router(router)
    return app
