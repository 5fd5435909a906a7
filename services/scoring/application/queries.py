"""Read-side use cases of the API: rankings, breakdowns, shortfall dossiers, scope (phạm vi).

Rows come from the read model; a month, quarter or year it has no rows for is summed on demand
from the contributions (no dossier judged), a custom range is evaluated on demand; neither is
stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.period_state import PeriodState, read_state
from services.scoring.adapters.repository import load_procedures, ranking_rows, score_row, score_rows
from services.scoring.application.aggregate import aggregate_period
from services.scoring.application.context import Scoring
from services.scoring.application.drilldown import dossier_item
from services.scoring.application.scoring_service import evaluate_live, rows_for
from services.scoring.domain import Methodology, Period, Procedure, breakdown, parse_period
from services.scoring.domain.engine import Evaluation, UnitRow
from services.scoring.domain.period_labels import HISTORY_MONTHS, history_floor
from shared.calendar import local_date
from shared.identity import Principal
from shared.web import ApiError


def current_month(now: datetime) -> str:
    d = local_date(now)
    return f"{d.year:04d}-{d.month:02d}"


def parsed_period(text: str | None, now: datetime) -> Period:
    """The asked period (default: the running month), as a label; 422 when it is none."""
    try:
        return parse_period(text or current_month(now))
    except ValueError as exc:
        raise ApiError(422, str(exc), details=[{"field": "period", "reason": str(exc)}]) from None


def kept_period(p: Period, now: datetime) -> Period:
    """``p`` if it starts within the history scoring keeps and not after today.

    Scoring keeps contributions from the history floor (:func:`history_floor`, ``HISTORY_MONTHS``
    before the running month) and no event is dated after now: a period starting before the floor
    or in the future, never computed, would be scored from no data (every unit 16 points, "weak")
    and read as a real score. Same rule as the periods the refresher marks (a quarter or year
    starting before the floor is out too). A period computed while it was within the window keeps
    its stored figures, served whatever its age (the routes ask this only of one never computed)."""
    floor = history_floor(now)
    if floor <= p.start and p.first_day <= local_date(now):
        return p
    first, running = current_month(floor), current_month(now)
    reason = (
        f"chỉ tra cứu được các kỳ bắt đầu từ {first} đến kỳ hiện tại {running} / "
        f"periods that can be asked for start from {first} ({HISTORY_MONTHS} months of history) "
        f"to the running one, {running}"
    )
    raise ApiError(422, f"period {p.label} cannot be scored", details=[{"field": "period", "reason": reason}])


MAX_CODE_LENGTH = 64


def checked_code(value: str, field: str) -> str:
    """A unit code, indicator or methodology id from a path or query: printable, bounded.

    A control character (``%00``–``%1F``) or an overlong value is a 422 naming the field, never
    a database error (PostgreSQL refuses NUL in text).
    """
    if len(value) > MAX_CODE_LENGTH:
        reason = f"at most {MAX_CODE_LENGTH} characters"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        reason = "control characters are not allowed"
    elif not value.strip():
        reason = "must not be empty"
    else:
        return value
    raise ApiError(422, f"invalid {field}: {reason}", details=[{"field": field, "reason": reason}])


def methodology_of(app: Scoring, methodology_id: str) -> Methodology:
    m = app.methodologies.get(checked_code(methodology_id, "methodology"))
    if m is None:
        reason = f"unknown methodology; known: {', '.join(sorted(app.methodologies))}"
        raise ApiError(
            404, f"unknown methodology {methodology_id!r}", details=[{"field": "methodology", "reason": reason}]
        )
    return m


def computed_at(rows: list[dict[str, Any]], now: datetime) -> datetime:
    """When rows read outside the cached path were computed (dữ liệu tính đến): ``now`` for rows
    computed on demand. Stored periods take theirs from period_state (a stored row's own
    computed_at is only when it last moved); the rows' stamps are a fallback for rows stored
    without one."""
    stamps = [r["computed_at"] for r in rows if r.get("computed_at") is not None]
    return max(stamps, default=now)


def ranking_body(
    period: str,
    methodology: str,
    mapping: str,
    rows: list[dict[str, Any]],
    levels: Sequence[str],
    parent: str | None,
    computed_at: str | None = None,
) -> dict[str, Any]:
    """The ranking (bảng xếp hạng) of rows in the shape of the stored ranking columns."""
    out = [
        {
            "unit_code": r["unit_code"],
            "unit_name": r["summary"]["unit_name"],
            "level": r["level"],
            "parent_code": r["parent_code"],
            "total": float(r["total"]),
            "grade": r["grade"],
            "rank": r["rank"],
            "rank_delta": r["rank_delta"],
            "groups": r["summary"]["groups"],
            "dossiers": r["dossiers"],
            "provisional": r["provisional"],
        }
        for r in rows
        if r["level"] in levels and (parent is None or r["parent_code"] == parent)
    ]
    # Ranked units by rank, then the provisional ones (rank null) by total.
    out.sort(
        key=lambda x: (
            x["level"],
            x["parent_code"] or "",
            x["rank"] is None,
            x["rank"] or 0,
            -x["total"],
            x["unit_code"],
        )
    )
    return {"period": period, "methodology": methodology, "mapping": mapping, "computed_at": computed_at, "rows": out}


def breakdown_body(
    unit_code: str, period: str, m: Methodology, mapping: str, row: dict[str, Any], computed_at: str | None = None
) -> dict[str, Any]:
    """A unit's breakdown (chi tiết điểm) from its full row: the stored figures with the words of
    the methodology that scored them (:func:`breakdown.shown`)."""
    shown = breakdown.shown(row["payload"], m, row["grade"])
    return {
        "unit_code": unit_code,
        "unit_name": shown["unit_name"],
        "period": period,
        "methodology": m.id,
        "mapping": mapping,
        "methodology_version": shown["methodology_version"],
        "total": float(row["total"]),
        "max_total": shown["max_total"],
        "grade": row["grade"],
        "grade_vi": shown["grade_vi"],
        "grade_en": shown["grade_en"],
        "rank": row["rank"],
        "rank_delta": row["rank_delta"],
        "dossiers": row["dossiers"],
        "provisional": row["provisional"],
        "computed_at": computed_at,
        "groups": shown["groups"],
    }


def no_score(unit_code: str, period: str) -> ApiError:
    reason = f"the unit has no score in {period} (not valid in that period)"
    return ApiError(404, f"no score for {unit_code} in {period}", details=[{"field": "unit_code", "reason": reason}])


@asynccontextmanager
async def _snapshot(app: Scoring) -> AsyncIterator[AsyncSession]:
    """A read-only session whose reads all see one snapshot (the state and the rows it stamps)."""
    async with app.sessions() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


async def stored_ranking(
    app: Scoring, period: str, m: Methodology, mapping: str, levels: Sequence[str], parent: str | None
) -> tuple[PeriodState, dict[str, Any]] | None:
    """The stored ranking with the period state it is exact as of (one snapshot); None when the
    period was never computed."""
    async with _snapshot(app) as session:
        state = await read_state(session, period, m.id)
        if state is None:
            return None
        rows = await ranking_rows(session, period, m.id, list(levels), parent)
    return state, ranking_body(period, m.id, mapping, rows, levels, parent)


async def stored_breakdown(
    app: Scoring, period: str, m: Methodology, mapping: str, unit_code: str
) -> tuple[PeriodState, dict[str, Any]] | None:
    """The stored breakdown with its period state (one snapshot); None when the period was never
    computed; 404 when it was but the unit has no row in it."""
    async with _snapshot(app) as session:
        state = await read_state(session, period, m.id)
        if state is None:
            return None
        row = await score_row(session, period, m.id, unit_code)
    if row is None:
        raise no_score(unit_code, period)
    return state, breakdown_body(unit_code, period, m, mapping, row)


async def rows(
    app: Scoring, session: AsyncSession, period: Period, m: Methodology, now: datetime
) -> list[dict[str, Any]]:
    """Stored rows, or the same computation on demand, judged at ``now`` (the route's clock)."""
    stored = await score_rows(session, period.label, m.id)
    if stored:
        return stored
    if period.kind == "range":  # ad hoc, no contributions kept: counted chunk by chunk, no verdict held
        ev = await evaluate_live(session, period=period, now=now, calendar=app.calendar, verdicts=False)
    else:  # a month/quarter/year never refreshed: sums over its contributions, no judging
        procedures = await load_procedures(session)
        ev = await aggregate_period(session, period=period, now=now, calendar=app.calendar, procedures=procedures)
    return [r.as_read_row() for r in await rows_for(session, ev=ev, methodology=m)]


async def unit_tree(app: Scoring, session: AsyncSession) -> list[UnitRow]:
    """The unit tree (cây đơn vị): the API's copy, at most about a second old (table_copy)."""
    return await app.units.get(session, app.sessions)


async def catalogue(app: Scoring, session: AsyncSession) -> dict[str, Procedure]:
    """The procedure catalogue (danh mục TTHC): the API's copy, at most about a second old."""
    return await app.procedures.get(session, app.sessions)


async def check_scope(app: Scoring, session: AsyncSession, principal: Principal, unit_code: str) -> None:
    """Staff see their unit's subtree (principal.unit is the unit or an ancestor); admins see all."""
    checked_code(unit_code, "unit_code")
    units = {u.code: u for u in await unit_tree(app, session)}
    if unit_code not in units:
        raise ApiError(404, f"unknown unit {unit_code!r}", details=[{"field": "unit_code", "reason": "unknown unit"}])
    if principal.is_admin:
        return
    code: str | None = unit_code
    seen: set[str] = set()
    while code is not None and code not in seen:
        if code == principal.unit:
            return
        seen.add(code)
        code = units[code].parent_code if code in units else None
    raise ApiError(403, f"unit {unit_code} is outside your scope")


def basis_of(m: Methodology, indicator_id: str) -> str:
    checked_code(indicator_id, "indicator_id")
    for ind in m.indicators:
        if ind.id == indicator_id and ind.basis:
            return ind.basis
    reason = f"not a dossier indicator of {m.id}"
    raise ApiError(
        404,
        f"methodology {m.id} has no dossier indicator {indicator_id!r}",
        details=[{"field": "indicator_id", "reason": reason}],
    )


def shortfall_items(ev: Evaluation, unit_code: str, basis: str) -> list[dict[str, Any]]:
    """The dossiers of the unit's subtree that cost points on ``basis``, with officer and reason."""
    items: list[dict[str, Any]] = []
    for v in ev.subtree_verdicts(unit_code):
        reason = v.shortfalls.get(basis)
        if reason is None:
            continue
        items.append(dossier_item(v, reason))
    items.sort(key=lambda i: (i["received_at"], i["dossier_id"]))
    return items
