"""Computing a period's scores into the read model, and announcing what changed.

``compute_period`` loads the inputs once, evaluates every relevant dossier (hồ sơ) once, then
scores each methodology, ranks among peers (same level and parent) with the delta against the
previous period, writes the rows in bulk and publishes ``scoring.score-updated.v1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.repository import load_inputs, previous_ranks, score_rows
from services.scoring.adapters.tables import score
from services.scoring.domain import Methodology, Period, previous_period
from services.scoring.engine import Evaluation, ScoreRow, evaluate_period, score_period
from shared.calendar import WorkingCalendar
from shared.contracts.scoring import ScoreUpdated
from shared.unit_of_work import UnitOfWork


async def evaluate_live(
    session: AsyncSession, *, period: Period, now: datetime, calendar: WorkingCalendar
) -> Evaluation:
    return evaluate_period(await load_inputs(session, period), period, now, calendar)


async def rows_for(
    session: AsyncSession,
    *,
    ev: Evaluation,
    methodology: Methodology,
) -> list[ScoreRow]:
    """Score rows of an evaluated period (rank delta against the stored previous period)."""
    previous = await previous_ranks(session, previous_period(ev.period).label, methodology.id)
    return score_period(ev, methodology, previous)


def _as_db(row: ScoreRow, computed_at: datetime) -> dict[str, Any]:
    return {
        "methodology": row.methodology,
        "period": row.period,
        "unit_code": row.unit_code,
        "total": row.total,
        "grade": row.grade,
        "rank": row.rank,
        "rank_delta": row.rank_delta,
        "dossiers": row.dossiers,
        "provisional": row.provisional,
        "payload": row.payload,
        "computed_at": computed_at,
    }


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("total", "grade", "rank", "rank_delta", "dossiers", "provisional", "payload")
    return all(old.get(k) == new.get(k) for k in keys)


async def compute_period(
    uow: UnitOfWork,
    *,
    period: Period,
    methodologies: Sequence[Methodology],
    now: datetime,
    calendar: WorkingCalendar,
) -> dict[str, list[str]]:
    """Recompute and store ``period`` for every methodology; returns the changed units per methodology."""
    s = uow.session
    ev = await evaluate_live(s, period=period, now=now, calendar=calendar)
    changed: dict[str, list[str]] = {}
    for m in methodologies:
        new = [_as_db(r, now) for r in await rows_for(s, ev=ev, methodology=m)]
        old = {r["unit_code"]: r for r in await score_rows(s, period.label, m.id)}
        units = sorted(
            {r["unit_code"] for r in new if r["unit_code"] not in old or not _same(old[r["unit_code"]], r)}
            | (old.keys() - {r["unit_code"] for r in new})
        )
        await s.execute(delete(score).where(score.c.period == period.label, score.c.methodology == m.id))
        if new:
            await s.execute(insert(score), new)
        changed[m.id] = units
        if units:
            uow.publish(ScoreUpdated(period=period.label, methodology=m.id, units=units, computed_at=now))
    return changed
