"""Read-side use cases of the API: rankings, breakdowns, shortfall dossiers, scope (phạm vi).

Rows come from the read model; a month, quarter or year it has no rows for is summed on demand
from the contributions (no dossier judged), a custom range is evaluated on demand; neither is
stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.repository import load_procedures, load_units, score_rows
from services.scoring.aggregate import aggregate_period
from services.scoring.bootstrap import Scoring
from services.scoring.domain import Methodology, Period, parse_period, satisfaction_shortfall
from services.scoring.engine import Evaluation
from services.scoring.scoring_service import evaluate_live, rows_for
from shared.calendar import local_date
from shared.identity import Principal
from shared.web import ApiError


def current_month(now: datetime) -> str:
    d = local_date(now)
    return f"{d.year:04d}-{d.month:02d}"


def period_of(text: str | None, now: datetime) -> Period:
    try:
        return parse_period(text or current_month(now))
    except ValueError as exc:
        raise ApiError(422, str(exc), details=[{"field": "period", "reason": str(exc)}]) from None


def methodology_of(app: Scoring, methodology_id: str) -> Methodology:
    m = app.methodologies.get(methodology_id)
    if m is None:
        raise ApiError(404, f"unknown methodology {methodology_id!r}")
    return m


async def rows(app: Scoring, session: AsyncSession, period: Period, m: Methodology) -> list[dict[str, Any]]:
    """Stored rows, or the same computation on demand."""
    stored = await score_rows(session, period.label, m.id)
    if stored:
        return stored
    now = datetime.now(UTC)
    if period.kind == "range":  # ad hoc: no contributions are kept for custom ranges
        ev = await evaluate_live(session, period=period, now=now, calendar=app.calendar)
    else:  # a month/quarter/year never refreshed: sums over its contributions, no judging
        procedures = await load_procedures(session)
        ev = await aggregate_period(session, period=period, now=now, calendar=app.calendar, procedures=procedures)
    return [r.as_read_row() for r in await rows_for(session, ev=ev, methodology=m)]


async def check_scope(session: AsyncSession, principal: Principal, unit_code: str) -> None:
    """Staff see their unit's subtree (principal.unit is the unit or an ancestor); admins see all."""
    units = {u.code: u for u in await load_units(session)}
    if unit_code not in units:
        raise ApiError(404, f"unknown unit {unit_code!r}")
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
    for ind in m.indicators:
        if ind.id == indicator_id and ind.basis:
            return ind.basis
    raise ApiError(404, f"methodology {m.id} has no dossier indicator {indicator_id!r}")


def shortfall_items(ev: Evaluation, unit_code: str, basis: str) -> list[dict[str, Any]]:
    """The dossiers of the unit's subtree that cost points on ``basis``, with officer and reason."""
    items: list[dict[str, Any]] = []
    for v in ev.subtree_verdicts(unit_code):
        if basis == "5.4":
            reason = satisfaction_shortfall(v, ev.ratings, ev.petitioned) if v.handled_in_period else None
        else:
            reason = v.shortfalls.get(basis)
        if reason is None:
            continue
        items.append(
            {
                "dossier_id": v.dossier_id,
                "unit_code": v.unit_code,
                "procedure_code": v.procedure_code,
                "received_at": v.received_at,
                "due_at": v.due_at,
                "finished_at": v.clock_end_at,
                "working_days_late": v.working_days_late,
                "officer_id": v.responsible_officer_id,
                "receiving_officer_id": v.receiving_officer_id,
                "reason": reason,
            }
        )
    items.sort(key=lambda i: (i["received_at"], i["dossier_id"]))
    return items
