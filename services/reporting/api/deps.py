"""Request dependencies: the app, the read model, the staff scope check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.adapters.changes import PUBLIC, Scope
from services.reporting.api.live import ChangeFeed
from services.reporting.api.page_cache import PageCache, key_of, respond
from services.reporting.bootstrap import Reporting
from services.reporting.views import ReadModel
from shared.contracts.scoring import METHODOLOGY_ID_PATTERN
from shared.identity import Principal
from shared.unit_tree import covers
from shared.web import ApiError


async def get_app(request: Request) -> Reporting:
    return request.app.state.reporting


async def get_read_model(request: Request) -> ReadModel:
    return request.app.state.read_model


async def get_changes(request: Request) -> ChangeFeed:
    return request.app.state.changes


App = Annotated[Reporting, Depends(get_app)]
Model = Annotated[ReadModel, Depends(get_read_model)]
Changes = Annotated[ChangeFeed, Depends(get_changes)]


async def cached(
    request: Request,
    render: Callable[[], Awaitable[Response]],
    *extra: Hashable,
    scopes: tuple[Scope, ...] = PUBLIC,
) -> Response:
    """``render()`` at most once per version of ``scopes`` and key (api.page_cache); ETag, 304."""
    changes: ChangeFeed = request.app.state.changes
    pages: PageCache = request.app.state.pages
    version = await changes.version(*scopes)
    return respond(request, await pages.page(key_of(request, *extra), version, render))


async def require_within_scope(model: ReadModel, session: AsyncSession, principal: Principal, unit_code: str) -> None:
    """403 unless ``unit_code`` lies in the staff member's subtree (an unknown unit: 404)."""
    units = await model.units(session)
    if unit_code not in units:
        raise ApiError(404, f"unknown unit {unit_code!r}", details=[{"field": "unit", "reason": "unknown unit"}])
    root = principal.unit or ""
    if not covers(model.parents(units), [root], unit_code):
        raise ApiError(
            403,
            f"unit {unit_code} is outside your scope ({root})",
            details=[{"field": "unit", "reason": "outside the caller's unit subtree"}],
        )


# A methodology id as scoring takes them: anything else is refused here, before PostgreSQL (a NUL
# gave a 500) or an export's file name header (non-Latin-1 gave a 500).
Methodology = Annotated[str | None, Query(max_length=64, pattern=METHODOLOGY_ID_PATTERN)]
