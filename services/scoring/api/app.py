"""The scoring API app: ``uvicorn services.scoring.api.app:create_app --factory``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from services.scoring.adapters.period_state import CHANNEL, REFERENCE_CHANGED
from services.scoring.api.ranges import RangeEvaluations
from services.scoring.api.read_cache import ReadCache, StateReader
from services.scoring.api.routes import router
from services.scoring.bootstrap import SERVICE, Scoring, bootstrap
from shared.background import cancel_and_wait
from shared.db import database_ready
from shared.listener import Listener
from shared.telemetry import configure_telemetry
from shared.web import create_app as create_service_app


def change_listener(scoring: Scoring, states: StateReader) -> Listener:
    """What this process caches, kept current by what it hears (``period_state.CHANNEL``).

    Each committed computation is heard at once, so a refresh shows in the reads one state read
    after its commit, not at the end of the reuse window (up to STALE_SECONDS under a stream). A
    change of the unit tree, the catalogue, a methodology or the calendar makes their copies due;
    so does every (re)connection, for what was missed while nobody listened."""
    copies = (scoring.units.reloads, scoring.procedures.reloads, scoring.synced)

    def heard(payload: str) -> None:
        if payload != REFERENCE_CHANGED:
            states.heard(payload)
            return
        for copy in copies:
            copy.changed()

    async def connected(_: asyncpg.Connection) -> None:
        for copy in copies:
            copy.changed()

    dsn = scoring.settings.listen_dsn
    listener = Listener(dsn, CHANNEL, heard, on_connect=connected, name="scoring change listener")
    for copy in copies:
        copy.follow(lambda: listener.connected)
    return listener


def create_app(scoring: Scoring | None = None) -> FastAPI:
    scoring = scoring or bootstrap()
    configure_telemetry(SERVICE, log_level=scoring.settings.log_level)

    states = StateReader(scoring.engine)
    changes = change_listener(scoring, states)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        listening = asyncio.create_task(changes.run())
        yield
        await cancel_and_wait(listening)
        await scoring.dispose()

    async def db_ready() -> bool:
        return await database_ready(scoring.engine)

    app = create_service_app(SERVICE, title="SQI scoring", checks={"database": db_ready}, lifespan=lifespan)
    app.state.scoring = scoring
    app.state.internal_token = scoring.settings.internal_token
    app.state.read_cache = ReadCache(states)  # this process's score reads
    app.state.ranges = RangeEvaluations()  # custom ranges: single flight, 60 s, bounded
    app.include_router(router)
    return app
