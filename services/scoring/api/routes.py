"""Scoring's HTTP routes (bảng xếp hạng, chi tiết điểm, hồ sơ gây mất điểm): thin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from services.scoring import queries
from services.scoring.bootstrap import DEFAULT_METHODOLOGY, Scoring
from services.scoring.domain.methodology import builtin_document
from services.scoring.scoring_service import evaluate_live
from shared.web import ApiError, CurrentPrincipal, Staff

router = APIRouter(prefix="/api/v1")


def get_app(request: Request) -> Scoring:
    app: Scoring = request.app.state.scoring
    return app


App = Annotated[Scoring, Depends(get_app)]
PeriodQ = Annotated[str | None, Query(description="2026-10, 2026-Q3, 2026 or 2026-10-01..2026-10-15")]
PUBLIC_LEVELS = ("province", "local")


@router.get("/scores", summary="Ranking (bảng xếp hạng)")
async def get_scores(
    app: App,
    principal: CurrentPrincipal,
    period: PeriodQ = None,
    level: Literal["province", "local"] | None = None,
    parent: str | None = None,
    methodology: str = DEFAULT_METHODOLOGY,
) -> dict[str, Any]:
    p = queries.period_of(period, datetime.now(UTC))
    m = queries.methodology_of(app, methodology)
    async with app.sessions() as session:
        rows = await queries.rows(app, session, p, m)
    out = []
    for r in rows:
        pl = r["payload"]
        if pl["level"] not in PUBLIC_LEVELS or (level and pl["level"] != level):
            continue
        if parent and pl["parent_code"] != parent:
            continue
        out.append(
            {
                "unit_code": r["unit_code"],
                "unit_name": pl["unit_name"],
                "level": pl["level"],
                "parent_code": pl["parent_code"],
                "total": float(r["total"]),
                "grade": r["grade"],
                "rank": r["rank"],
                "rank_delta": r["rank_delta"],
                "groups": {g["id"]: g["points"] for g in pl["groups"]},
                "dossiers": r["dossiers"],
                "provisional": r["provisional"],
            }
        )
    out.sort(key=lambda x: (x["level"], x["parent_code"] or "", x["rank"] or 0, x["unit_code"]))
    return {"period": p.label, "methodology": m.id, "rows": out}


@router.get("/scores/{unit_code}", summary="Breakdown of a unit's score (chi tiết điểm)")
async def get_breakdown(
    unit_code: str, app: App, principal: Staff, period: PeriodQ = None, methodology: str = DEFAULT_METHODOLOGY
) -> dict[str, Any]:
    p = queries.period_of(period, datetime.now(UTC))
    m = queries.methodology_of(app, methodology)
    async with app.sessions() as session:
        await queries.check_scope(session, principal, unit_code)
        rows = await queries.rows(app, session, p, m)
    row = next((r for r in rows if r["unit_code"] == unit_code), None)
    if row is None:
        raise ApiError(404, f"no score for {unit_code} in {p.label}")
    pl = row["payload"]
    return {
        "unit_code": unit_code,
        "unit_name": pl["unit_name"],
        "period": p.label,
        "methodology": m.id,
        "methodology_version": pl["methodology_version"],
        "total": float(row["total"]),
        "max_total": pl["max_total"],
        "grade": row["grade"],
        "grade_vi": pl["grade_vi"],
        "grade_en": pl["grade_en"],
        "rank": row["rank"],
        "rank_delta": row["rank_delta"],
        "dossiers": row["dossiers"],
        "provisional": row["provisional"],
        "groups": pl["groups"],
    }


@router.get(
    "/scores/{unit_code}/indicators/{indicator_id}/dossiers",
    summary="Dossiers behind an indicator's shortfall (hồ sơ gây mất điểm)",
)
async def get_shortfall_dossiers(
    unit_code: str,
    indicator_id: str,
    app: App,
    principal: Staff,
    period: PeriodQ = None,
    methodology: str = DEFAULT_METHODOLOGY,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    p = queries.period_of(period, now)
    m = queries.methodology_of(app, methodology)
    basis = queries.basis_of(m, indicator_id)
    async with app.sessions() as session:
        await queries.check_scope(session, principal, unit_code)
        ev = await evaluate_live(session, period=p, now=now, calendar=app.calendar)
    items = queries.shortfall_items(ev, unit_code, basis)
    start = (page - 1) * page_size
    return {"items": items[start : start + page_size], "page": page, "page_size": page_size, "total": len(items)}


@router.get("/methodologies", summary="Methodology versions (bộ chỉ số)")
async def list_methodologies(app: App) -> list[dict[str, Any]]:
    return [
        {"id": m.id, "version": m.version, "name_vi": m.name_vi, "name_en": m.name_en, "max_total": float(m.max_total)}
        for m in app.methodologies.values()
    ]


@router.get("/methodologies/{methodology_id}", summary="A methodology: indicators, maxima, formulas, grades")
async def get_methodology(methodology_id: str, app: App) -> dict[str, Any]:
    queries.methodology_of(app, methodology_id)
    return builtin_document(methodology_id)
