"""The dossiers behind an indicator's shortfall (hồ sơ gây mất điểm), from the stored verdicts.

A month, quarter or year keeps each dossier's verdict as flags (``scoring.contribution``). The
list of a unit's shortfall dossiers is one indexed read of those flags — the contributions of
the units that count towards the unit's subtree in the period, filtered by the indicator's
shortfall condition, ordered by receipt and paginated in SQL — and only the page's dossiers
are judged again, for their dates, officers and reason. A period with thousands of dossiers
costs a page, not the period.

Custom ranges have no stored verdicts: they are still judged on demand
(:func:`services.scoring.queries.shortfall_items`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.codec import facts_from_json
from services.scoring.adapters.repository import dissatisfied_or_petitioned_sql, load_units
from services.scoring.adapters.tallies import DOSSIER_RATIOS, shortfall_flags
from services.scoring.domain import (
    DossierVerdict,
    Period,
    Procedure,
    RatingFacts,
    evaluate,
    latest_rating,
    satisfaction_shortfall,
)
from services.scoring.domain.definitions import HANDLED, ON_TIME_COUNT, RECEIVED
from services.scoring.domain.engine import UnitRow, _resolve
from shared.calendar import WorkingCalendar
from shared.db import driver_connection as driver

H, R = HANDLED.mask, RECEIVED.mask
# The dossier indicators whose shortfall is a condition on the stored flags (domain/definitions.py).
SHORTFALL_BASES = tuple(DOSSIER_RATIOS)
_ON_TIME = ON_TIME_COUNT.mask
# 5.4: overdue, or on time but rated dissatisfied (latest rating before the judging instant)
# or named in a petition received before it.
_UNSATISFIED = f"""
c.flags & {H} <> 0 AND (c.flags & {_ON_TIME} <> {_ON_TIME} OR c.dossier_id IN ({dissatisfied_or_petitioned_sql("$3")}))
"""


def _condition(basis: str) -> str | None:
    if basis == "5.4":
        return _UNSATISFIED
    flags = shortfall_flags(basis)
    if flags is None:
        return None  # not a per-dossier shortfall (procedure-level or not scored): no dossier list
    need, lack = flags
    return f"c.flags & {need} = {need} AND c.flags & {lack} = 0"


def member_codes(units: list[UnitRow], unit_code: str, period: Period) -> list[str]:
    """Every unit code whose dossiers count towards ``unit_code``'s subtree in ``period``: the
    valid units below it, and the codes (closed, merged) that resolve into them."""
    every = {u.code: u for u in units}
    valid = {u.code: u for u in units if u.valid_in(period)}
    children: dict[str, list[str]] = {}
    for u in valid.values():
        if u.parent_code in valid:
            children.setdefault(u.parent_code, []).append(u.code)
    subtree: set[str] = set()
    stack = [unit_code] if unit_code in valid else []
    while stack:
        code = stack.pop()
        if code not in subtree:
            subtree.add(code)
            stack += children.get(code, [])
    return sorted(code for code in every if _resolve(code, valid, every) in subtree)


def dossier_item(v: DossierVerdict, reason: str | None) -> dict[str, Any]:
    """One row of a shortfall dossier list: the dossier, its dates, its officers and the reason."""
    return {
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


async def shortfall_page(
    session: AsyncSession,
    *,
    unit_code: str,
    basis: str,
    period: Period,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
    offset: int,
    limit: int,
    units: list[UnitRow] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the shortfall dossiers of ``unit_code``'s subtree, and how many there are."""
    condition = _condition(basis)
    if condition is None:
        return [], 0
    codes = member_codes(units if units is not None else await load_units(session), unit_code, period)
    if not codes:
        return [], 0
    judged_at = period.judged_at(now)
    conn: Any = await driver(session)
    where = f"c.period = $1 AND c.unit_code = ANY($2::text[]) AND {condition}"
    args: list[Any] = [period.label, codes, judged_at] if basis == "5.4" else [period.label, codes]
    total = int(await conn.fetchval(f"SELECT count(*) FROM scoring.contribution c WHERE {where}", *args) or 0)
    n = len(args)
    rows = await conn.fetch(
        f"""SELECT d.dossier_id, d.facts::text FROM scoring.contribution c
        JOIN scoring.dossier d ON d.dossier_id = c.dossier_id
        WHERE {where} ORDER BY d.received_at, d.dossier_id LIMIT ${n + 1} OFFSET ${n + 2}""",
        *args,
        limit,
        offset,
    )
    ids = [r[0] for r in rows]
    ratings: dict[str, RatingFacts] = {}
    petitioned: set[str] = set()
    if basis == "5.4" and ids:
        rated = await conn.fetch(
            "SELECT dossier_id, level, criteria::text, rated_at FROM scoring.rating "
            "WHERE dossier_id = ANY($1::text[]) AND rated_at < $2",
            ids,
            judged_at,
        )
        ratings = latest_rating([RatingFacts(r[0], r[1], {}, r[3]) for r in rated], judged_at)
        named = await conn.fetch(
            "SELECT DISTINCT data->>'dossier_id' FROM scoring.petition "
            "WHERE received_at < $2 AND data->>'dossier_id' = ANY($1::text[])",
            ids,
            judged_at,
        )
        petitioned = {r[0] for r in named}
    procs = dict(procedures)
    items: list[dict[str, Any]] = []
    for r in rows:
        v = evaluate(facts_from_json(orjson.loads(r[1]), procs), period, judged_at, calendar)
        reason = satisfaction_shortfall(v, ratings, petitioned) if basis == "5.4" else v.shortfalls.get(basis)
        items.append(dossier_item(v, reason))
    return items, total


async def subtree_dossier_ids(session: AsyncSession, unit_code: str, period: Period) -> list[str]:
    """The dossiers with a stored verdict in ``period`` that count towards ``unit_code``'s subtree."""
    codes = member_codes(await load_units(session), unit_code, period)
    if not codes:
        return []
    conn: Any = await driver(session)
    rows = await conn.fetch(
        "SELECT dossier_id FROM scoring.contribution WHERE period = $1 AND unit_code = ANY($2::text[])",
        period.label,
        codes,
    )
    return [r[0] for r in rows]
