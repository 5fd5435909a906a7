"""The scoring API app: ``uvicorn services.scoring.api.app:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.scoring.api.read_cache import ReadCache, StateReader
from services.scoring.api.routes import router
from services.scoring.bootstrap import SERVICE, Scoring, bootstrap
from shared.db import database_ready
from shared.telemetry import configure_telemetry
from shared.web import create_app as create_service_app


def create_app(scoring: Scoring | None = None) -> FastAPI:
    scoring = scoring or bootstrap()
    configure_telemetry(SERVICE, log_level=scoring.settings.log_level)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await scoring.waker.settle()  # wakes of the last commits, before their connections go
        await scoring.engine.dispose()

    async def db_ready() -> bool:
        return await database_ready(scoring.engine)

    app = create_service_app(SERVICE, title="SQI scoring", checks={"database": db_ready}, lifespan=lifespan)
    app.state.scoring = scoring
    app.state.internal_token = scoring.settings.internal_token
    app.state.read_cache = ReadCache(StateReader(scoring.engine))  # this process's score reads
    app.include_router(router)
    return app
