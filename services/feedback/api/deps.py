"""Request dependencies shared by the JSON routes and the HTML pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request

from services.feedback.bootstrap import Feedback
from services.feedback.handlers.petitions import AccessGuard
from services.feedback.handlers.ratings import LockPolicy
from shared import web


async def get_app(request: Request) -> Feedback:
    return request.app.state.feedback


App = Annotated[Feedback, Depends(get_app)]


def client_address(request: Request) -> str:
    """The address the gateway saw (with its internal token); else the peer."""
    return web.client_address(request)


def access_guard(request: Request, app: Feedback) -> AccessGuard:
    """Counts this caller's petition access-code attempts (per petition and per address)."""
    return AccessGuard(engine=app.engine, sealer=app.sealer, client_address=client_address(request), now=now())


def now() -> datetime:
    return datetime.now(UTC)


def lock_policy(app: Feedback) -> LockPolicy:
    return LockPolicy(
        max_failures=app.settings.feedback_lockout_failures,
        lock_for=timedelta(minutes=app.settings.feedback_lockout_minutes),
    )
