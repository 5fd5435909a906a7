"""Time-versioned units (đơn vị theo thời kỳ) and the two ways of reporting across a reorganisation.

The unit table keeps every unit with its validity interval (``valid_from``..``valid_to``) and its
successor (``successor_code``, e.g. the provincial departments merged on 1 July 2025 into today's
34 provincial offices — sáp nhập, hợp nhất đơn vị). A period can be shown in two mappings:

* ``as_of_period`` (default, the stored read model): the units valid during the period, each with
  its own dossiers — a period before the reorganisation is reported on the units of its own time.
* ``today``: the period's dossiers mapped onto the units valid today. A unit no longer valid
  hands its dossiers (and petitions) to its successor, following the successor chain
  (A → B → C) until a unit valid today is reached. A unit valid in the period with no chain to a
  unit valid today (dissolved without successor) keeps its own dossiers rather than losing them.

The mapping is expressed purely as a rewrite of the unit rows handed to the engine: units of the
target tree get an open validity interval, every other unit an empty one, successors unchanged, so
:func:`services.scoring.engine.evaluate_period` resolves dossiers through the chain exactly as it
does for units dissolved inside a period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.repository import load_inputs, load_procedures, load_units
from services.scoring.application.aggregate import aggregate_period
from services.scoring.application.range_counts import evaluate_range_counts
from services.scoring.application.scoring_service import rows_for
from services.scoring.domain import Methodology, Period, parse_period
from services.scoring.domain.engine import Evaluation, Inputs, UnitRow, evaluate_period
from shared.calendar import WorkingCalendar, local_date
from shared.unit_tree import successor_target as follow_successors

UnitMapping = Literal["as_of_period", "today"]
AS_OF_PERIOD: UnitMapping = "as_of_period"
TODAY: UnitMapping = "today"


def _day(d: date) -> Period:
    return parse_period(f"{d.isoformat()}..{d.isoformat()}")


def successor_target(code: str, units: Mapping[str, UnitRow], today: date) -> str | None:
    """The unit valid on ``today`` that ``code`` maps to (itself when valid), following successors
    (:func:`shared.unit_tree.successor_target`)."""
    day = _day(today)
    return follow_successors(code, units, lambda u: u.valid_in(day))


def units_mapped_to_today(units: Sequence[UnitRow], period: Period, today: date) -> list[UnitRow]:
    """Unit rows rewritten so that the engine scores ``period`` on the tree valid on ``today``.

    Kept valid (open interval): the units valid today, and the units valid in the period that have
    no successor chain to a unit valid today. Every other unit is made never valid, so its
    dossiers are resolved through its successors.
    """
    every = {u.code: u for u in units}
    day = _day(today)
    out: list[UnitRow] = []
    for u in units:
        keep = u.valid_in(day) or (u.valid_in(period) and successor_target(u.code, every, today) is None)
        if keep:
            out.append(replace(u, valid_from=None, valid_to=None))
        else:
            out.append(replace(u, valid_from=date.max, valid_to=date.min))
    return out


def is_identity(units: Sequence[UnitRow], period: Period, today: date) -> bool:
    """True when mapping onto today's units changes nothing for ``period`` (the common case)."""
    day = _day(today)
    return all(u.valid_in(period) == u.valid_in(day) for u in units)


async def evaluate_mapped(
    session: AsyncSession,
    *,
    period: Period,
    now: datetime,
    calendar: WorkingCalendar,
    mapping: UnitMapping = AS_OF_PERIOD,
) -> Evaluation:
    """Evaluate ``period`` on the units of its own time, or mapped onto today's units."""
    inputs = await load_inputs(session, period)
    if mapping == TODAY:
        inputs = Inputs(
            units=units_mapped_to_today(inputs.units, period, local_date(now)),
            procedures=inputs.procedures,
            facts=inputs.facts,
            petitions=inputs.petitions,
            ratings=inputs.ratings,
        )
    return await asyncio.to_thread(evaluate_period, inputs, period, now, calendar)  # off the event loop


async def mapped_rows(
    session: AsyncSession,
    *,
    period: Period,
    methodology: Methodology,
    calendar: WorkingCalendar,
    now: datetime | None = None,
) -> list[dict[str, Any]] | None:
    """Score rows of ``period`` on today's units (computed on demand, never stored).

    Returns None when the mapping is the identity for this period, so the caller serves the stored
    rows. ``rank_delta`` compares with the stored (as-of) ranks of the previous period.
    """
    now = now or datetime.now(UTC)
    units = await load_units(session)
    if is_identity(units, period, local_date(now)):
        return None
    mapped = units_mapped_to_today(units, period, local_date(now))
    if period.kind == "range":  # no stored counters for a custom range: counted chunk by chunk on demand
        ev = await evaluate_range_counts(session, period=period, now=now, calendar=calendar, units=mapped)
    else:  # the stored counters, resolved onto today's units: no dossier judged
        ev = await aggregate_period(
            session,
            period=period,
            now=now,
            calendar=calendar,
            procedures=await load_procedures(session),
            units=mapped,
        )
    return [r.as_read_row() for r in await rows_for(session, ev=ev, methodology=methodology)]
