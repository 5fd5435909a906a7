"""The feedback app: ``uvicorn services.feedback.api.app:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.feedback.api.pages import router as pages_router
from services.feedback.api.routes import router
from services.feedback.bootstrap import SERVICE, Feedback, bootstrap
from shared.db import database_ready
from shared.telemetry import configure_telemetry
from shared.web import create_app as create_service_app

STATIC_DIR = Path(__file__).parent / "static"


def create_app(feedback: Feedback | None = None, *, telemetry: bool = True) -> FastAPI:
    feedback = feedback or bootstrap()
    if telemetry:
        configure_telemetry(SERVICE, log_level=feedback.settings.log_level)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await feedback.dispose()

    async def db_ready() -> bool:
        return await database_ready(feedback.engine)

    app = create_service_app(
        SERVICE,
        title="SQI feedback",
        description="Ratings (đánh giá) and petitions (phản ánh, kiến nghị) from citizens and businesses.",
        checks={"database": db_ready},
        lifespan=lifespan,
    )
    app.state.feedback = feedback
    app.state.internal_token = feedback.settings.internal_token
    app.include_router(router)
    app.include_router(pages_router)
    app.mount("/static/feedback", StaticFiles(directory=STATIC_DIR), name="feedback-static")
    return app
