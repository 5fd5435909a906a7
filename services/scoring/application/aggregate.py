"""A period's counts from the stored counters: a few rows per unit, roll-up over subtrees in Python.

The same numbers as :func:`services.scoring.engine.evaluate_period` (the recompute path), without
judging a single dossier or reading the period's contributions: per unit (as of the judging
instant) one row of counters, per unit and procedure one row of bit counts for the
distinct-procedure indicators (3.6, 4.2, 4.4, 4.5), both kept by :mod:`services.scoring.adapters.tallies`.
A parent's counts are built from the union of its subtree: additive counts add, procedure sets
unite — never an average of children. 5.4 is two of those counters (on time, minus on time and
excepted by citizens' feedback): a rating or a petition naming a dossier re-judges it like a new
event, its latest rating as of each period's judging instant being part of its verdict, so a
closed period keeps the rating it was judged with when the dossier is rated again later.
Petitions (G5) are few and judged here with the domain's code."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.repository import countable_petitions, load_units, petition_facts
from services.scoring.adapters.tallies import PROCEDURE_SQL, UNIT_COLUMNS, UNIT_SQL, procedure_flags
from services.scoring.domain import (
    Count,
    Period,
    PetitionVerdict,
    Procedure,
    compute_catalogue_counts,
)
from services.scoring.domain.engine import Evaluation, UnitRow, _resolve, petition_verdicts, unit_forest
from services.scoring.domain.indicators import CatalogueCache, tally_counts
from shared.calendar import WorkingCalendar
from shared.db import driver_connection as driver


@dataclass
class Tally:
    """One unit's (or subtree's) sums and per-procedure flags."""

    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UNIT_COLUMNS, 0))
    procs: dict[str, int] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        for k, v in other.sums.items():
            self.sums[k] += v
        for code, f in other.procs.items():
            self.procs[code] = self.procs.get(code, 0) | f


def counts_of(
    t: Tally,
    procedures: Mapping[str, Procedure],
    levels: set[str],
    petitions: list[PetitionVerdict],
    cache: CatalogueCache | None = None,
) -> dict[str, Count]:
    """The declared computations over the stored sums (the same function as from scratch)."""
    return tally_counts(t.sums, t.procs, procedures, levels, petitions, cache)


async def _tallies(session: AsyncSession, period: Period) -> dict[str, Tally]:
    """The period's stored counters per unit (as judged)."""
    conn: Any = await driver(session)
    out: dict[str, Tally] = defaultdict(Tally)
    for r in await conn.fetch(UNIT_SQL, period.label):
        out[r[0]].sums = {k: int(r[k]) for k in UNIT_COLUMNS}
    for r in await conn.fetch(PROCEDURE_SQL, period.label):
        out[r[0]].procs[r[1]] = procedure_flags(r)
    return out


async def _petitions(
    session: AsyncSession, period: Period, judged_at: datetime, calendar: WorkingCalendar
) -> list[PetitionVerdict]:
    rows = await session.execute(countable_petitions(period))
    return petition_verdicts((petition_facts(d) for d in rows.scalars()), period, judged_at, calendar)


async def aggregate_period(
    session: AsyncSession,
    *,
    period: Period,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
    units: list[UnitRow] | None = None,
) -> Evaluation:
    """An :class:`Evaluation` whose ``counts`` come from the contributions (no verdicts kept)."""
    judged_at = period.judged_at(now)
    return roll_up(
        period=period,
        judged_at=judged_at,
        units=units if units is not None else await load_units(session),
        own=await _tallies(session, period),
        petitions=await _petitions(session, period, judged_at, calendar),
        procedures=procedures,
        calendar=calendar,
    )


def roll_up(
    *,
    period: Period,
    judged_at: datetime,
    units: Sequence[UnitRow],
    own: Mapping[str, Tally],
    petitions: Iterable[PetitionVerdict],
    procedures: Mapping[str, Procedure],
    calendar: WorkingCalendar,
) -> Evaluation:
    """Counts per unit subtree from per-unit tallies (CPU only): the stored counters of a period
    (:func:`aggregate_period`) or those a custom range's dossiers were folded into
    (:mod:`.range_counts`) — one roll-up, so both count alike. ``own`` and ``petitions`` are keyed
    by the unit as judged, resolved here onto the units valid in ``period`` (successors followed)."""
    every, valid, children = unit_forest(units, period)
    mine: dict[str, Tally] = defaultdict(Tally)
    for raw_code, t in own.items():
        code = _resolve(raw_code, valid, every)
        if code is not None:
            mine[code].add(t)
    own_p: dict[str, list[PetitionVerdict]] = defaultdict(list)
    for pv in petitions:
        code = _resolve(pv.unit_code, valid, every)
        if code is not None:
            own_p[code].append(pv)
    ev = Evaluation(period, judged_at, valid, children, {}, dict(own_p))
    cache: CatalogueCache = {}
    for code in valid:
        tree = ev.subtree(code)
        total = Tally()
        for member in tree:
            if member in mine:
                total.add(mine[member])
        ev.counts[code] = counts_of(
            total, procedures, {valid[u].level for u in tree}, [p for u in tree for p in own_p.get(u, ())], cache
        )
    catalogue = compute_catalogue_counts(procedures, period, calendar)
    for code, u in valid.items():
        if u.level == "central":
            ev.counts[code].update(catalogue)
    ev.counts["__catalogue__"] = catalogue
    return ev
