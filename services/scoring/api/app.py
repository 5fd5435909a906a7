"""The scoring API app: ``uvicorn services.scoring.api.app:create_app --factory``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.scoring.adapters.period_state import CHANNEL
from services.scoring.api.read_cache import ReadCache, StateReader
from services.scoring.api.routes import router
from services.scoring.bootstrap import SERVICE, Scoring, bootstrap
from shared.background import cancel_and_wait
from shared.db import database_ready
from shared.listener import Listener
from shared.telemetry import configure_telemetry
from shared.web import create_app as create_service_app


def create_app(scoring: Scoring | None = None) -> FastAPI:
    scoring = scoring or bootstrap()
    configure_telemetry(SERVICE, log_level=scoring.settings.log_level)

    states = StateReader(scoring.engine)
    # Each committed computation is heard at once, so a refresh shows in the reads one state read
    # after its commit, not at the end of the reuse window (up to STALE_SECONDS under a stream).
    computations = Listener(scoring.settings.listen_dsn, CHANNEL, states.heard, name="scoring computation listener")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        listening = asyncio.create_task(computations.run())
        yield
        await cancel_and_wait(listening)
        await scoring.dispose()

    async def db_ready() -> bool:
        return await database_ready(scoring.engine)

    app = create_service_app(SERVICE, title="SQI scoring", checks={"database": db_ready}, lifespan=lifespan)
    app.state.scoring = scoring
    app.state.internal_token = scoring.settings.internal_token
    app.state.read_cache = ReadCache(states)  # this process's score reads
    app.include_router(router)
    return app
