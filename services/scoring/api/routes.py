"""Scoring's HTTP routes (bảng xếp hạng, chi tiết điểm, hồ sơ gây mất điểm): thin."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.scoring.adapters.calendar_store import KINDS, declare_day, undeclare_day, year_calendar
from services.scoring.adapters.methodology_store import add_methodology, error_details, stored_document
from services.scoring.adapters.period_state import PeriodState
from services.scoring.api.query_input import single_valued_query
from services.scoring.api.ranges import RangeEvaluations
from services.scoring.api.read_cache import ReadCache, respond
from services.scoring.application import queries
from services.scoring.application.caches import sync_methodologies, sync_references
from services.scoring.application.context import Scoring
from services.scoring.application.drilldown import shortfall_page
from services.scoring.application.range_counts import range_subtree_judged
from services.scoring.application.stake import DEFAULT_WITHIN_WD, StakeItem, UnitStake, load_unit_stake
from services.scoring.application.table_copy import NEVER
from services.scoring.application.unit_history import AS_OF_PERIOD, TODAY, UnitMapping, mapped_rows
from services.scoring.domain import Methodology, Period, breakdown
from services.scoring.domain.methodology import DEFAULT_METHODOLOGY, methodology_from_dict, validate_methodology
from services.scoring.domain.period import MAX_YEAR, MIN_YEAR
from shared.db import retrying_conflicts
from shared.web import Admin, ApiError, CurrentPrincipal, Staff

log = logging.getLogger(__name__)
T = TypeVar("T")
# Every route: a scalar query parameter given twice is a 422, not its last value (query_input).
router = APIRouter(prefix="/api/v1", dependencies=[Depends(single_valued_query)])


async def sync_caches(app: Scoring) -> None:
    async with app.sessions() as session:
        await sync_references(app, session)


async def get_app(request: Request) -> Scoring:
    """The app with its cached methodology versions and calendar, checked against their tables
    when a change is heard (``app.synced``, :mod:`services.scoring.application.table_copy`); this
    process's own changes apply at once.

    Only the first request waits for them. After that, a request that finds them due starts one
    check in the background and is answered with the copies in hand: the check is two queries,
    and under a stream the request that waited for them was among the slowest of every second (it
    reached the reads' p99)."""
    app: Scoring = request.app.state.scoring
    if app.synced.loaded_at == NEVER:
        await app.synced.first(lambda: sync_caches(app))
    else:
        app.synced.start_if_due(lambda: sync_caches(app))
    return app


App = Annotated[Scoring, Depends(get_app)]
PeriodQ = Annotated[str | None, Query(description="2026-10, 2026-Q3, 2026 or 2026-10-01..2026-10-15")]
PUBLIC_LEVELS = ("province", "local")
MAX_PAGE = 1_000_000  # a page number beyond any list (and the offset within a 64-bit integer)
MappingQ = Annotated[
    UnitMapping,
    Query(
        description="as_of_period (default): the units valid in the period (đơn vị của thời kỳ); "
        "today: the period's dossiers mapped onto today's units through the successor chain "
        "(quy đổi sang đơn vị hiện nay)"
    ),
]


async def get_now() -> datetime:
    """Every route's clock: the judging instant of the running period, the bound of the periods
    that can be asked, the stamps of what a route writes. One dependency, so a test pins the
    whole module with ``app.dependency_overrides[get_now]``."""
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(get_now)]


def _light(row: dict[str, Any]) -> dict[str, Any]:
    """A full read row (with its payload) in the shape of the stored ranking columns."""
    pl = row["payload"]
    return {
        **row,
        "level": pl["level"],
        "parent_code": pl["parent_code"],
        "summary": {"unit_name": pl["unit_name"], "groups": breakdown.group_points(pl)},
    }


def read_cache(request: Request) -> ReadCache:
    cache: ReadCache = request.app.state.read_cache
    return cache


async def asked_period(
    request: Request, text: str | None, now: datetime, m: Methodology
) -> tuple[Period, PeriodState | None]:
    """The asked period and its stored state: a month, quarter or year scoring computed (its
    stored figures, whatever its age: computed while it was within the history kept), else one it
    can compute — within the history kept and not in the future (``queries.kept_period``, 422
    otherwise). The state is the one read for the answer (a custom range has none)."""
    p = queries.parsed_period(text, now)
    state = None if p.kind == "range" else await read_cache(request).states.get(p.label, m.id)
    return (p if state is not None else queries.kept_period(p, now)), state


def range_evaluations(request: Request) -> RangeEvaluations:
    ranges: RangeEvaluations = request.app.state.ranges
    return ranges


async def _judged(request: Request, p: Period, key: tuple[Any, ...], compute: Callable[[], Awaitable[T]]) -> T:
    """``compute()``, which judges every dossier of ``p`` when it is a custom range: then shared by
    concurrent identical requests, kept 60 s and bounded per process (503 beyond, api.ranges)."""
    if p.kind != "range":
        return await compute()
    result: T = await range_evaluations(request).get((p.label, *key), compute)
    return result


async def _today_rows(
    request: Request, app: Scoring, p: Period, m: Methodology, now: datetime
) -> list[dict[str, Any]] | None:
    """Rows mapped onto today's units (computed on demand), or None when today's units are the
    period's own (then the stored, cached answer is the answer)."""

    async def compute() -> list[dict[str, Any]] | None:
        async with app.sessions() as session:
            return await mapped_rows(session, period=p, methodology=m, calendar=app.calendar, now=now)

    return await _judged(request, p, ("today", m.id), compute)


async def _rows(
    request: Request, app: Scoring, p: Period, m: Methodology, now: datetime
) -> tuple[list[dict[str, Any]], datetime]:
    """Rows computed on demand, with when (a kept range's: when it was judged, up to 60 s ago)."""

    async def compute() -> tuple[list[dict[str, Any]], datetime]:
        async with app.sessions() as session:
            return await queries.rows(app, session, p, m, now), now

    return await _judged(request, p, ("rows", m.id), compute)


@router.get("/scores", summary="Ranking (bảng xếp hạng)", response_model=None)
async def get_scores(
    request: Request,
    app: App,
    principal: CurrentPrincipal,
    now: Now,
    period: PeriodQ = None,
    level: Literal["province", "local"] | None = None,
    parent: str | None = None,
    methodology: str = DEFAULT_METHODOLOGY,
    mapping: MappingQ = AS_OF_PERIOD,
) -> Response | dict[str, Any]:
    """A stored period: its cached body (one read of the period's state, no rows read while no
    score of it moved; ``ETag``, 304 on ``If-None-Match``). Custom ranges, periods no refresh
    stored and the today-mapping of a changed unit tree: computed on demand."""
    m = queries.methodology_of(app, methodology)
    p, state = await asked_period(request, period, now, m)
    if parent is not None:
        queries.checked_code(parent, "parent")
    levels = (level,) if level else PUBLIC_LEVELS
    rows = await _today_rows(request, app, p, m, now) if mapping == TODAY else None
    if rows is None:
        cache = read_cache(request)
        if state is not None:  # the public ranking does not depend on who asks: no scope in the key
            key = ("ranking", p.label, m.id, mapping, levels, parent)
            found = await cache.answer(
                key, state, lambda: queries.stored_ranking(app, p.label, m, mapping, levels, parent)
            )
            if found is not None:
                return respond(request, key, *found)
        rows, now = await _rows(request, app, p, m, now)
    light = [_light(r) for r in rows]
    stamp = queries.computed_at(light, now).isoformat()
    return queries.ranking_body(p.label, m.id, mapping, light, levels, parent, computed_at=stamp)


@router.get("/scores/{unit_code}", summary="Breakdown of a unit's score (chi tiết điểm)", response_model=None)
async def get_breakdown(
    request: Request,
    unit_code: str,
    app: App,
    principal: Staff,
    now: Now,
    period: PeriodQ = None,
    methodology: str = DEFAULT_METHODOLOGY,
    mapping: MappingQ = AS_OF_PERIOD,
) -> Response | dict[str, Any]:
    """Scope is checked first, on every request; the body (cached as the ranking's) does not
    depend on who asks once they may see it."""
    m = queries.methodology_of(app, methodology)
    p, state = await asked_period(request, period, now, m)
    async with app.sessions() as session:
        await queries.check_scope(app, session, principal, unit_code)
    rows = await _today_rows(request, app, p, m, now) if mapping == TODAY else None
    if rows is None:
        cache = read_cache(request)
        if state is not None:
            key = ("breakdown", p.label, m.id, mapping, unit_code)
            found = await cache.answer(
                key, state, lambda: queries.stored_breakdown(app, p.label, m, mapping, unit_code)
            )
            if found is not None:
                return respond(request, key, *found)
        rows, now = await _rows(request, app, p, m, now)
    row = next((r for r in rows if r["unit_code"] == unit_code), None)
    if row is None:
        raise queries.no_score(unit_code, p.label)
    stamp = queries.computed_at([row], now).isoformat()
    return queries.breakdown_body(unit_code, p.label, m, mapping, row, computed_at=stamp)


@router.get(
    "/scores/{unit_code}/indicators/{indicator_id}/dossiers",
    summary="Dossiers behind an indicator's shortfall (hồ sơ gây mất điểm)",
)
async def get_shortfall_dossiers(
    request: Request,
    unit_code: str,
    indicator_id: str,
    app: App,
    principal: Staff,
    now: Now,
    period: PeriodQ = None,
    methodology: str = DEFAULT_METHODOLOGY,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    m = queries.methodology_of(app, methodology)
    p, _ = await asked_period(request, period, now, m)
    basis = queries.basis_of(m, indicator_id)
    start = (page - 1) * page_size
    async with app.sessions() as session:
        await queries.check_scope(app, session, principal, unit_code)
        if p.kind != "range":  # one indexed read of the stored verdicts; only the page is judged
            items, total = await shortfall_page(
                session,
                units=await queries.unit_tree(app, session),
                unit_code=unit_code,
                basis=basis,
                period=p,
                now=now,
                calendar=app.calendar,
                procedures=await queries.catalogue(app, session),
                offset=start,
                limit=page_size,
            )
            return {"items": items, "page": page, "page_size": page_size, "total": total}

    async def judge() -> list[dict[str, Any]]:  # no stored verdicts for a custom range
        async with app.sessions() as session:  # chunk by chunk, the subtree's verdicts only
            judged = await range_subtree_judged(session, period=p, now=now, calendar=app.calendar, unit_code=unit_code)
        return queries.shortfall_items(judged.evaluation, unit_code, basis)  # only the list is kept

    every = await _judged(request, p, ("shortfall", unit_code, basis), judge)
    return {"items": every[start : start + page_size], "page": page, "page_size": page_size, "total": len(every)}


WithinQ = Annotated[
    int, Query(ge=0, le=60, description="2.1: open dossiers due within this many working days (hồ sơ sắp đến hạn)")
]


def _stake_links(unit_code: str, item: StakeItem, period: str, methodology: str, within_wd: int) -> dict[str, str]:
    q = f"period={period}&methodology={methodology}"
    base = f"/api/v1/scores/{unit_code}"
    return {
        "dossiers_path": f"{base}/stake/{item.indicator_id}/dossiers?{q}&within_wd={within_wd}",
        "shortfall_path": f"{base}/indicators/{item.indicator_id}/dossiers?{q}",
    }


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


async def _stake(
    request: Request, app: Scoring, unit_code: str, m: Methodology, p: Period, now: datetime, within_wd: int
) -> UnitStake:
    """The unit's points at stake; a custom range's judges its subtree's dossiers chunk by chunk."""

    async def compute() -> UnitStake:
        async with app.sessions() as session:
            return await load_unit_stake(
                session, unit_code, m, period=p, now=now, calendar=app.calendar, within_wd=within_wd
            )

    return await _judged(request, p, ("stake", m.id, unit_code, within_wd), compute)


@router.get("/scores/{unit_code}/stake", summary="Points at stake (điểm có thể giành được khi khắc phục)")
async def get_stake(
    request: Request,
    unit_code: str,
    app: App,
    principal: Staff,
    now: Now,
    period: PeriodQ = None,
    methodology: str = DEFAULT_METHODOLOGY,
    within_wd: WithinQ = DEFAULT_WITHIN_WD,
) -> dict[str, Any]:
    """The unit's open, fixable shortfalls ranked by the points fixing each would gain.

    Each item: the indicator (id, Vietnamese and English name), the action, the points gained
    (exact: the unit rescored without and with the fix, rounded as the methodology says), the
    number of dossiers, the indicators it moves, and the path of its dossier list. A closed period
    cannot change: ``running`` is false and ``items`` empty.
    """
    m = queries.methodology_of(app, methodology)
    p, _ = await asked_period(request, period, now, m)
    async with app.sessions() as session:
        await queries.check_scope(app, session, principal, unit_code)
    st = await _stake(request, app, unit_code, m, p, now, within_wd)
    return {
        "unit_code": unit_code,
        "period": p.label,
        "methodology": m.id,
        "judged_at": st.judged_at.isoformat(),
        "running": st.running,
        "within_wd": within_wd,
        "total": _f(st.total),
        "items": [
            {
                "indicator_id": i.indicator_id,
                "basis": i.basis,
                "name_vi": i.name_vi,
                "name_en": i.name_en,
                "action_vi": i.action_vi,
                "action_en": i.action_en,
                "points": float(i.points),
                "dossiers": i.dossiers,
                "effects": [
                    {
                        "indicator_id": e.indicator_id,
                        "denominator": e.denominator,
                        "numerator_without": e.numerator_without,
                        "numerator_with": e.numerator_with,
                        "points_without": float(e.points_without),
                        "points_with": float(e.points_with),
                    }
                    for e in i.effects
                ],
                **_stake_links(unit_code, i, p.label, m.id, within_wd),
            }
            for i in st.items
        ],
    }


@router.get(
    "/scores/{unit_code}/stake/{indicator_id}/dossiers",
    summary="The dossiers behind a points-at-stake item (hồ sơ cần khắc phục)",
)
async def get_stake_dossiers(
    request: Request,
    unit_code: str,
    indicator_id: str,
    app: App,
    principal: Staff,
    now: Now,
    period: PeriodQ = None,
    methodology: str = DEFAULT_METHODOLOGY,
    within_wd: WithinQ = DEFAULT_WITHIN_WD,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    m = queries.methodology_of(app, methodology)
    p, _ = await asked_period(request, period, now, m)
    basis = queries.basis_of(m, indicator_id)
    async with app.sessions() as session:
        await queries.check_scope(app, session, principal, unit_code)
    st = await _stake(request, app, unit_code, m, p, now, within_wd)
    fix = st.fixes.get(basis)
    verdicts = list(fix.dossiers) if fix else []
    items = [
        {
            "dossier_id": v.dossier_id,
            "unit_code": v.unit_code,
            "procedure_code": v.procedure_code,
            "received_at": v.received_at,
            "due_at": v.due_at,
            "officer_id": v.responsible_officer_id,
            "receiving_officer_id": v.receiving_officer_id,
            "reason": v.shortfalls.get(basis),
        }
        for v in verdicts
    ]
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
    async with app.sessions() as session:
        doc = await stored_document(session, methodology_id)
    if doc is None:
        raise ApiError(404, f"unknown methodology {methodology_id!r}")
    return doc


@router.post("/methodologies", status_code=201, summary="Upload a methodology version (admin)")
async def post_methodology(
    app: App, principal: Admin, now: Now, document: Annotated[Any, Body(description="a methodology document")]
) -> JSONResponse:
    """Validated (422 listing every error), immutable (409 if the id exists, builtins included);
    every period already scored is then computed for it beside the other versions."""
    errors = validate_methodology(document)
    if errors:
        raise ApiError(422, "invalid methodology", details=error_details(errors))
    try:  # only a document that loads is stored: a stored one that did not broke every restart
        methodology_from_dict(document)
    except (ArithmeticError, KeyError, TypeError, ValueError) as exc:
        raise ApiError(422, "invalid methodology", details=error_details([f"methodology: {exc}"])) from exc
    async with app.uow() as uow:
        row = await add_methodology(uow.session, document, created_by=principal.sub or "admin", now=now)
    if row is None:
        raise ApiError(409, f"methodology {document['id']!r} exists; versions are immutable, upload a new id")
    async with app.sessions() as session:
        await sync_methodologies(app, session)
    m = app.methodologies[document["id"]]
    body = {
        "id": m.id,
        "version": m.version,
        "name_vi": m.name_vi,
        "name_en": m.name_en,
        "max_total": float(m.max_total),
        "created_by": row["created_by"],
        "created_at": row["created_at"].isoformat(),
        "document": document,
    }
    return JSONResponse(body, status_code=201)


class CalendarDayIn(BaseModel):
    kind: Literal["day_off", "working_day"] = Field(description="ngày nghỉ bổ sung or ngày làm bù")
    # No control characters (a NUL gave a 500 from PostgreSQL); pydantic's regex: $ ends the text.
    note: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")


@router.get("/calendar", summary="The year's working calendar (lịch ngày làm việc)")
async def get_calendar(app: App, year: Annotated[int, Query(ge=MIN_YEAR, le=MAX_YEAR)]) -> dict[str, Any]:
    """Non-working weekdays (Vietnamese holidays and declared days off), working weekend days,
    and the days declared by an admin."""
    async with app.sessions() as session:
        return await year_calendar(session, app.calendar, year)


@router.put("/calendar/days/{day}", summary="Declare a day off or a make-up working day (admin)")
async def put_calendar_day(day: date, body: CalendarDayIn, app: App, principal: Admin, now: Now) -> JSONResponse:
    """A change re-judges every dossier and recomputes every scored period at the next refresh."""
    assert body.kind in KINDS
    if not MIN_YEAR <= day.year <= MAX_YEAR:  # as GET /calendar?year= shows them
        raise ApiError(
            422, "no such calendar day", details=[{"field": "day", "reason": f"years {MIN_YEAR}–{MAX_YEAR} only"}]
        )

    async def declare() -> tuple[dict[str, Any], bool]:
        async with app.uow() as uow:
            return await declare_day(uow, day, body.kind, body.note, declared_by=principal.sub or "admin", now=now)

    # Flagging every dossier can meet a consumer's batch flagging some of them in another order.
    row, created = await retrying_conflicts(declare)
    await sync_caches(app)
    out = {**row, "day": row["day"].isoformat(), "declared_at": row["declared_at"].isoformat()}
    return JSONResponse(out, status_code=201 if created else 200)


@router.delete("/calendar/days/{day}", status_code=204, summary="Withdraw a declared day (admin)")
async def delete_calendar_day(day: date, app: App, _: Admin) -> None:
    async def undeclare() -> bool:
        async with app.uow() as uow:
            return await undeclare_day(uow, day)

    found = await retrying_conflicts(undeclare)
    await sync_caches(app)
    if not found:
        raise ApiError(404, f"no declared day {day.isoformat()}")
