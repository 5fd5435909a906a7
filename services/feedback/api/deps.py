"""Request dependencies shared by the JSON routes and the HTML pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request

from services.feedback.bootstrap import Feedback
from services.feedback.handlers.ratings import LockPolicy
from shared.identity import CLIENT_ADDRESS_HEADER


def get_app(request: Request) -> Feedback:
    return request.app.state.feedback


App = Annotated[Feedback, Depends(get_app)]


def client_address(request: Request) -> str:
    """The address the gateway saw (it overwrites any client-sent value); else the peer."""
    forwarded = request.headers.get(CLIENT_ADDRESS_HEADER)
    if forwarded:
        return forwarded
    return request.client.host if request.client else "unknown"


def now() -> datetime:
    return datetime.now(UTC)


def lock_policy(app: Feedback) -> LockPolicy:
    return LockPolicy(
        max_failures=app.settings.feedback_lockout_failures,
        lock_for=timedelta(minutes=app.settings.feedback_lockout_minutes),
    )
