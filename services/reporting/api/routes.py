"""JSON and file routes: warnings (contract), ranking reports (contract), the briefing PDF."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from services.reporting.api.deps import App, Methodology, Model, cached, require_within_scope
from services.reporting.api.render import ranking_json
from services.reporting.api.render_pool import RenderPool
from services.reporting.domain import periods
from services.reporting.domain.briefing import GroupLabel, RankingRow
from services.reporting.domain.ranking import StoredRow, build_ranking, group_labels
from services.reporting.exports import briefing_pdf, ranking_csv, ranking_xlsx
from services.reporting.views import utcnow
from shared.web import ApiError, Staff

router = APIRouter(prefix="/api/v1")

Period = Annotated[
    str | None, Query(max_length=16, description="2026-10, 2026-Q3 or 2026; default: latest closed month")
]
Level = Annotated[Literal["province", "local"] | None, Query()]
UnitCode = Annotated[str | None, Query(max_length=64)]
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._-]")


def attachment(filename: str) -> dict[str, str]:
    """The ``Content-Disposition`` of a download named ``filename`` (RFC 6266): a plain ASCII name
    and the exact one as ``filename*`` (RFC 8187). A unit code is typed by people: a quote or
    ``;`` in it broke the header, a letter outside Latin-1 (``Đ``) made it a 500."""
    plain = _NOT_PLAIN.sub("_", filename)
    return {"Content-Disposition": f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"}


@router.get("/warnings", summary="Warnings (cảnh báo) for a unit's subtree")
async def get_warnings(app: App, model: Model, principal: Staff, unit: UnitCode = None) -> dict[str, Any]:
    code = unit or principal.unit or ""
    async with app.sessions() as session:
        await require_within_scope(model, session, principal, code)
        items = await model.warnings(session, root=code, now=utcnow())
    return {
        "items": [
            {
                "kind": i.kind,
                "unit_code": i.unit_code,
                "dossier_id": i.dossier_id,
                "officer_id": i.officer_id,
                "due_at": i.due_at.isoformat() if i.due_at else None,
                "detail": i.detail,
            }
            for i in items
        ]
    }


async def _period(model: Model, app: App, methodology: str, period: str | None) -> str:
    if period is None:
        async with app.sessions() as session:
            latest = await model.latest_month(session, methodology, utcnow())
        if latest is None:
            raise ApiError(404, "no scores yet", details=[{"field": "period", "reason": "no scored period"}])
        return latest
    if periods.kind_of(period) is None:
        raise ApiError(
            422, f"bad period {period!r}", details=[{"field": "period", "reason": "use 2026-10, 2026-Q3 or 2026"}]
        )
    return period


async def _ranking(
    app: App,
    model: Model,
    principal: Any,
    period: str | None,
    level: str | None,
    parent: str | None,
    methodology: str | None,
) -> tuple[list[RankingRow], list[GroupLabel], str, str]:
    stored, _, document, label, mid = await _stored_ranking(app, model, principal, period, level, parent, methodology)
    rows = build_ranking(stored)
    return rows, group_labels(document, (g for r in rows for g in r.groups)), label, mid


async def _stored_ranking(
    app: App,
    model: Model,
    principal: Any,
    period: str | None,
    level: str | None,
    parent: str | None,
    methodology: str | None,
) -> tuple[list[StoredRow], datetime | None, dict[str, Any] | None, str, str]:
    mid = methodology or app.settings.reporting_default_methodology
    label = await _period(model, app, mid, period)
    async with app.sessions() as session:
        root = principal.unit or ""
        if parent:
            await require_within_scope(model, session, principal, parent)
        codes = await model.scope(session, root)
        stored, computed = await model.stored_ranking(
            session, methodology_id=mid, period=label, level=level, parent=parent, codes=codes
        )
        document = await model.document(session, mid)
    return stored, computed, document, label, mid


@router.get(
    "/reports/ranking",
    summary="The ranking from reporting's read model (JSON)",
    response_class=JSONResponse,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def get_ranking(
    request: Request,
    app: App,
    model: Model,
    principal: Staff,
    period: Period = None,
    level: Level = None,
    parent: UnitCode = None,
    methodology: Methodology = None,
) -> Response:
    async def render() -> Response:
        ranking = await _stored_ranking(app, model, principal, period, level, parent, methodology)
        stored, computed, document, label, mid = ranking
        pool: RenderPool = request.app.state.renderer  # ~700 units built and serialised off the event loop
        body = await pool.run(ranking_json, label, mid, computed, stored, document)
        return Response(body, media_type="application/json")

    # Once per version of the scores and per scope (the identity's unit root).
    return await cached(request, render, principal.unit)


@router.get("/reports/ranking.csv", summary="The ranking as CSV (UTF-8 with BOM)")
async def get_ranking_csv(
    app: App,
    model: Model,
    principal: Staff,
    period: Period = None,
    level: Level = None,
    parent: UnitCode = None,
    methodology: Methodology = None,
) -> Response:
    rows, groups, label, mid = await _ranking(app, model, principal, period, level, parent, methodology)
    return Response(
        ranking_csv(rows, groups=groups),
        media_type="text/csv; charset=utf-8",
        headers=attachment(f"sqi-ranking-{mid}-{label}.csv"),
    )


@router.get("/reports/ranking.xlsx", summary="The ranking as an Excel workbook")
async def get_ranking_xlsx(
    app: App,
    model: Model,
    principal: Staff,
    period: Period = None,
    level: Level = None,
    parent: UnitCode = None,
    methodology: Methodology = None,
) -> Response:
    rows, groups, label, mid = await _ranking(app, model, principal, period, level, parent, methodology)
    title = f"Bảng xếp hạng chỉ số chất lượng phục vụ — {periods.display(label, 'vi')}"
    return Response(
        await run_in_threadpool(lambda: ranking_xlsx(rows, groups=groups, title=title)),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=attachment(f"sqi-ranking-{mid}-{label}.xlsx"),
    )


@router.get("/reports/briefing.pdf", summary="The monthly briefing (báo cáo tóm tắt) as PDF")
async def get_briefing_pdf(
    app: App,
    model: Model,
    principal: Staff,
    period: Period = None,
    unit: UnitCode = None,
    methodology: Methodology = None,
) -> Response:
    mid = methodology or app.settings.reporting_default_methodology
    label = await _period(model, app, mid, period)
    async with app.sessions() as session:
        root = principal.unit or ""
        if unit:
            await require_within_scope(model, session, principal, unit)
        briefing = await model.briefing(
            session, root=root, period=label, methodology_id=mid, unit_code=unit, now=utcnow()
        )
    name = f"sqi-briefing-{label}{'-' + unit if unit else ''}.pdf"
    # Typesetting takes seconds of CPU: off the event loop, so other requests keep answering.
    return Response(
        await run_in_threadpool(briefing_pdf, briefing),
        media_type="application/pdf",
        headers=attachment(name),
    )
