"""Computing a period's scores into the read model, and announcing what changed.

``compute_period`` judges the dossiers due for it (changed, or whose verdict time alone changed;
in a judging step of its own, unless its caller judged them in the refresher's steps), takes the
period's counts from the stored counters, scores each methodology, ranks among peers (same level
and parent) with the delta against the previous period, writes the rows in bulk and publishes
the changed units in ``scoring.scores-updated.v3`` messages, plus grade changes and drops of ≥ 5
points. ``evaluate_live`` (every dossier judged) stays for custom ranges (their
counts in bounded memory, chunk by chunk; their shortfall lists with every verdict) and the
recompute check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.period_state import record_computation
from services.scoring.adapters.repository import load_inputs, load_procedures, previous_ranks
from services.scoring.adapters.tables import score
from services.scoring.application.aggregate import aggregate_period
from services.scoring.application.judging import judge_due_in_step
from services.scoring.application.range_counts import evaluate_range_counts
from services.scoring.domain import Methodology, Period, breakdown, previous_period
from services.scoring.domain.engine import Evaluation, ScoreRow, evaluate_period, payload_digest, score_period
from shared.calendar import WorkingCalendar
from shared.contracts import IntegrationEvent
from shared.contracts.scoring import GradeChanged, ScoreDropped, ScoresUpdated
from shared.unit_of_work import UnitOfWork


async def evaluate_live(
    session: AsyncSession, *, period: Period, now: datetime, calendar: WorkingCalendar, verdicts: bool = True
) -> Evaluation:
    """Judge every dossier of ``period`` (custom ranges, recompute): in a worker thread, so the
    API's event loop keeps answering reads meanwhile.

    ``verdicts=True``: every verdict is kept (``Evaluation.own``: shortfall lists, the recompute
    check), and every dossier's facts and verdict are in memory at once (≈ 6 KB of heap a dossier).
    ``verdicts=False``: counts only, judged chunk by chunk in bounded memory
    (:func:`~services.scoring.application.range_counts.evaluate_range_counts`): rankings and
    breakdowns of a custom range."""
    if not verdicts:
        return await evaluate_range_counts(session, period=period, now=now, calendar=calendar)
    inputs = await load_inputs(session, period)
    return await asyncio.to_thread(evaluate_period, inputs, period, now, calendar)


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
        "digest": row.digest or payload_digest(row.payload),
        "level": row.payload["level"],
        "parent_code": row.payload["parent_code"],
        "summary": {
            "unit_name": row.payload["unit_name"],
            "groups": breakdown.group_points(row.payload),
        },
    }


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("total", "grade", "rank", "rank_delta", "dossiers", "provisional", "digest")
    return all(old.get(k) == new.get(k) for k in keys)


_INSERT = pg_insert(score)
_UPSERT = _INSERT.on_conflict_do_update(
    index_elements=[score.c.methodology, score.c.period, score.c.unit_code],
    set_={
        c.name: _INSERT.excluded[c.name] for c in score.columns if c.name not in ("methodology", "period", "unit_code")
    },
)

# The stored columns a refresh compares with (never the payloads).
_COMPARED = (
    score.c.unit_code,
    score.c.total,
    score.c.grade,
    score.c.rank,
    score.c.rank_delta,
    score.c.dossiers,
    score.c.provisional,
    score.c.digest,
)


def _dec(x: Any) -> str | None:
    """A payload number as the contract's Decimal JSON: its text (``6.0`` stays ``6.0``; a JSON
    number would be read back as ``6``, and reporting stores what it reads)."""
    return None if x is None else str(x)


def methodology_figures(row: dict[str, Any]) -> dict[str, Any]:
    """A read-model row as :class:`MethodologyScore`'s JSON: everything a ranking row or unit page
    shows. Built from the stored payload without a model per indicator — a refresh that moves
    every office announces ~800 of these, ~20 indicators each, and constructing the models was a
    quarter of the refresh's CPU; the tests validate the result against the contract."""
    pl = row["payload"]
    return {
        "total": str(row["total"]),
        "grade": row["grade"],
        "rank": row["rank"],
        "dossiers": row["dossiers"],
        "rank_delta": row["rank_delta"],
        "provisional": row["provisional"],
        "groups": {g: _dec(p) for g, p in breakdown.group_points(pl).items()},
        "indicators": breakdown.indicator_figures(pl, _dec),
        "unit_name": pl["unit_name"],
        "level": pl["level"],
        "parent_code": pl["parent_code"],
    }


def announcements(
    period: str, old: dict[str, dict[str, dict[str, Any]]], new: dict[str, dict[str, dict[str, Any]]], now: datetime
) -> tuple[list[bytes], list[IntegrationEvent]]:
    """The changed units' figures as ``ScoresUpdated`` bodies (every methodology of a unit in one
    entry, at most ``MAX_UNITS`` units a message), and the threshold crossings.

    ``old``/``new``: methodology → unit → row. Thresholds compare with the previous computation
    of the same period (a first computation crosses nothing).
    """
    changed: dict[str, dict[str, dict[str, Any]]] = {}
    crossings: list[IntegrationEvent] = []
    for m, rows in new.items():
        before = old.get(m, {})
        for code, r in sorted(rows.items()):
            prev = before.get(code)
            if prev is not None and _same(prev, r):
                continue
            changed.setdefault(code, {})[m] = methodology_figures(r)
            if prev is None:
                continue
            if prev["grade"] != r["grade"]:
                crossings.append(
                    GradeChanged(
                        period=period,
                        methodology=m,
                        unit_code=code,
                        previous_grade=prev["grade"],
                        grade=r["grade"],
                        total=r["total"],
                        computed_at=now,
                    )
                )
            if Decimal(prev["total"]) - Decimal(r["total"]) >= ScoreDropped.DROP_POINTS:
                crossings.append(
                    ScoreDropped(
                        period=period,
                        methodology=m,
                        unit_code=code,
                        previous_total=prev["total"],
                        total=r["total"],
                        computed_at=now,
                    )
                )
    units = [{"unit_code": code, "scores": scores} for code, scores in sorted(changed.items())]
    return ScoresUpdated.bodies(period=period, computed_at=now, units=units), crossings


async def evaluate_counts(
    session: AsyncSession, *, period: Period, now: datetime, calendar: WorkingCalendar, judge: bool = True
) -> Evaluation:
    """Counts of a period: from the contributions (judging what is due first, ``judge``), or — for
    a custom range, which has none — by judging its dossiers chunk by chunk into counters.

    ``judge``: judged in a judging step of this transaction and counted with the step's copies
    (``calendar`` is not used: a copy read before the step's snapshot could hold a calendar older
    than what the step judges against), so that a catalogue or calendar change committed while it
    judges is judged again by the next step (:func:`judge_due_in_step`)."""
    if period.kind == "range":
        return await evaluate_live(session, period=period, now=now, calendar=calendar, verdicts=False)
    if judge:
        procedures, calendar = await judge_due_in_step(session, now=now)
    else:
        procedures = await load_procedures(session)
    return await aggregate_period(session, period=period, now=now, calendar=calendar, procedures=procedures)


async def compute_period(
    uow: UnitOfWork,
    *,
    period: Period,
    methodologies: Sequence[Methodology],
    now: datetime,
    calendar: WorkingCalendar,
    judge: bool = True,
) -> dict[str, list[str]]:
    """Recompute and store ``period`` for every methodology; returns the changed units per methodology.

    ``judge=False``: the caller judged the due dossiers already (in chunks); any it left re-mark
    the period when judged. ``judge=True``: judged here, in a judging step, and scored with the
    step's calendar rather than ``calendar`` (:func:`evaluate_counts`).
    """
    s = uow.session
    ev = await evaluate_counts(s, period=period, now=now, calendar=calendar, judge=judge)
    changed: dict[str, list[str]] = {}
    olds: dict[str, dict[str, dict[str, Any]]] = {}
    news: dict[str, dict[str, dict[str, Any]]] = {}
    for m in methodologies:
        new = [_as_db(r, now) for r in await rows_for(s, ev=ev, methodology=m)]
        mine = (score.c.period == period.label, score.c.methodology == m.id)
        old = {r["unit_code"]: dict(r) for r in (await s.execute(select(*_COMPARED).where(*mine))).mappings()}
        moved = [r for r in new if r["unit_code"] not in old or not _same(old[r["unit_code"]], r)]
        gone = sorted(old.keys() - {r["unit_code"] for r in new})
        # Only moved rows are written (their own computed_at says when they last moved); that the
        # others are still exact as of ``now`` is one row of period_state, not an update of each.
        if gone:
            await s.execute(delete(score).where(*mine, score.c.unit_code.in_(gone)))
        if moved:  # executemany of one cached statement (batched by the driver)
            await s.execute(_UPSERT, moved)
        await record_computation(s, period=period.label, methodology=m.id, now=now, changed=bool(moved or gone))
        changed[m.id] = sorted({r["unit_code"] for r in moved} | set(gone))
        olds[m.id], news[m.id] = old, {r["unit_code"]: r for r in new}
    bodies, crossings = announcements(period.label, olds, news, now)
    for body in bodies:
        uow.publish_raw(routing_key=ScoresUpdated.routing_key, body=body)
    uow.publish_many(crossings)
    return changed
