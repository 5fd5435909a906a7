"""The dossiers behind an indicator's shortfall (hồ sơ gây mất điểm), from the stored verdicts.

A month, quarter or year keeps each dossier's verdict as flags (``scoring.contribution``). The
list of a unit's shortfall dossiers is one indexed read of those flags — the contributions of
the units that count towards the unit's subtree in the period, filtered by the indicator's
shortfall condition, ordered by receipt and paginated in SQL — and only the page's dossiers
are judged again, for their dates, officers and reason (5.4's with the page's ratings and the
petitions naming them, read by key). A period with thousands of dossiers costs a page, not the
period.

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
from services.scoring.adapters.repository import load_feedback, load_units
from services.scoring.adapters.tallies import DOSSIER_RATIOS, shortfall_condition
from services.scoring.domain import NO_FEEDBACK, DossierFeedback, DossierVerdict, Period, Procedure, evaluate
from services.scoring.domain.definitions import HANDLED, RECEIVED
from services.scoring.domain.engine import UnitRow, _resolve
from shared.calendar import WorkingCalendar
from shared.db import driver_connection as driver

H, R = HANDLED.mask, RECEIVED.mask
# The dossier indicators whose shortfall is a condition on the stored flags (domain/definitions.py).
SHORTFALL_BASES = tuple(DOSSIER_RATIOS)


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
    condition = shortfall_condition(basis, "c")
    if condition is None:
        return [], 0  # not a per-dossier shortfall (procedure-level or not scored): no dossier list
    codes = member_codes(units if units is not None else await load_units(session), unit_code, period)
    if not codes:
        return [], 0
    judged_at = period.judged_at(now)
    conn: Any = await driver(session)
    where = f"c.period = $1 AND c.unit_code = ANY($2::text[]) AND {condition}"
    args: list[Any] = [period.label, codes]
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
    # Only 5.4's reason reads the page's ratings and petitions (every flag is judged the same without).
    feedback: dict[str, DossierFeedback] = await load_feedback(conn, [r[0] for r in rows]) if basis == "5.4" else {}
    procs = dict(procedures)
    items: list[dict[str, Any]] = []
    for r in rows:
        facts = facts_from_json(orjson.loads(r[1]), procs)
        v = evaluate(facts, period, judged_at, calendar, feedback=feedback.get(r[0], NO_FEEDBACK))
        items.append(dossier_item(v, v.shortfalls.get(basis)))
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
