"""A custom range's counts in bounded memory (khoảng ngày tùy chọn): judged chunk by chunk into counters.

A custom range has no stored counters. Judging it whole (``evaluate_period`` over ``load_inputs``)
held every dossier's facts and verdict of the range at once: ≈ 6 KB of heap a dossier (measured,
docs/performance.md, session 19), ≈ 1.3 GB for a national month, against the API pod's 512 MiB. Here:

- the range's dossiers are read ``CHUNK_DOSSIERS`` at a time (keyset on ``dossier_id``, the same
  selection as ``load_facts``), with the ratings of that chunk's dossiers; petitions are few and
  loaded whole, as the whole judging loads them;
- each dossier is judged for the range by the rule ``evaluate_period`` uses
  (:func:`~services.scoring.domain.engine.judged_in_period`), its verdict turned into a
  :class:`Contribution` by the stored rows' declarations (``flags_of``) and folded into per-unit
  counters by :func:`~services.scoring.adapters.tallies.deltas`: the counters the judging
  transaction keeps for a month, here kept in memory;
- the counters are rolled up over subtrees by the roll-up of the stored counters
  (:func:`~services.scoring.application.aggregate.roll_up`), so a range counts as a month does.

Held at once: the counters (per unit, and per unit and procedure), the petitions and one chunk's
facts and verdicts. The CPU (judging, the roll-up) runs in a worker thread, a chunk at a time.
Only counts come out (``Evaluation.own`` is empty). A range's shortfall list and points at stake
(:func:`range_subtree_judged`) read the same chunks and keep the verdicts of the asked unit's
subtree only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.repository import (
    load_facts_chunk,
    load_petitions,
    load_procedures,
    load_ratings_of,
    load_units,
)
from services.scoring.adapters.tallies import PROCEDURE_COLUMNS, UNIT_COLUMNS, deltas, procedure_flags
from services.scoring.application.aggregate import Tally, roll_up
from services.scoring.domain import (
    NO_FEEDBACK,
    DossierFacts,
    DossierVerdict,
    Period,
    PetitionFacts,
    Procedure,
    RatingFacts,
    feedback_by_dossier,
)
from services.scoring.domain.contributions import Contribution
from services.scoring.domain.definitions import flags_of
from services.scoring.domain.engine import (
    Evaluation,
    UnitRow,
    _resolve,
    judged_in_period,
    petition_verdicts,
    unit_forest,
)
from shared.calendar import WorkingCalendar

# Dossiers read and judged at a time: ≈ 6 KB of heap each while judged (≈ 12 MB a chunk), and one
# statement per chunk (≈ 1,350 for a national year, against its ≈ 2.7 M dossiers).
CHUNK_DOSSIERS = 2_000


@dataclass
class RangeCounters:
    """A range's counters per unit as judged (``UNIT_COLUMNS``) and per (unit, procedure)
    (``PROCEDURE_COLUMNS``): what ``scoring.unit_tally`` and ``unit_procedure_tally`` hold for a month."""

    units: dict[str, list[int]] = field(default_factory=dict)
    procedures: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, contributions: Iterable[Contribution]) -> None:
        units, procs = deltas((), contributions)
        for (_, unit_code), values in units.items():
            _add_into(self.units, unit_code, values)
        for (_, unit_code, procedure_code), values in procs.items():
            _add_into(self.procedures, (unit_code, procedure_code), values)

    def tallies(self) -> dict[str, Tally]:
        """The counters as the roll-up reads the stored ones (``aggregate._tallies``)."""
        out: dict[str, Tally] = {}
        for code, values in self.units.items():
            out[code] = Tally(sums=dict(zip(UNIT_COLUMNS, values, strict=True)))
        for (code, procedure_code), values in self.procedures.items():
            row = dict(zip(PROCEDURE_COLUMNS, values, strict=True))
            if row["handled"] > 0:  # as PROCEDURE_SQL reads them
                out.setdefault(code, Tally()).procs[procedure_code] = procedure_flags(row)
        return out


K = TypeVar("K", str, tuple[str, str])


def _add_into(into: dict[K, list[int]], key: K, values: list[int]) -> None:
    have = into.get(key)
    if have is None:
        into[key] = list(values)
    else:
        for i, v in enumerate(values):
            have[i] += v


def petitions_naming(petitions: Iterable[PetitionFacts]) -> dict[str, list[datetime]]:
    """Per dossier id, the receipt instants of the petitions naming it (5.4's exception)."""
    out: dict[str, list[datetime]] = {}
    for p in petitions:
        if p.dossier_id:
            out.setdefault(p.dossier_id, []).append(p.received_at)
    return out


@dataclass(frozen=True)
class RangeJudging:
    """How a range's dossiers are judged: its period and judging instant, the calendar, and the
    receipt instants of the petitions naming each dossier (5.4's exception)."""

    period: Period
    judged_at: datetime
    calendar: WorkingCalendar
    named: Mapping[str, list[datetime]]

    def verdicts(self, facts: Sequence[DossierFacts], ratings: Iterable[RatingFacts]) -> Iterator[DossierVerdict]:
        """The verdicts of the chunk's dossiers that count in the range, judged as
        ``evaluate_period`` judges them (the unit as judged: resolved by the caller)."""
        named = self.named
        feedback = feedback_by_dossier(ratings, ((f.dossier_id, t) for f in facts for t in named.get(f.dossier_id, ())))
        for f in facts:
            v = judged_in_period(f, self.period, self.judged_at, self.calendar, feedback.get(f.dossier_id, NO_FEEDBACK))
            if v is not None:
                yield v


def fold_chunk(
    counters: RangeCounters, facts: Sequence[DossierFacts], ratings: Iterable[RatingFacts], judging: RangeJudging
) -> None:
    """Judge one chunk and add its verdicts to ``counters``, each as the row a month's judging
    would store for it (CPU only: run in a worker thread)."""
    label = judging.period.label
    counters.add(
        Contribution(v.dossier_id, label, v.unit_code, v.procedure_code, flags_of(v), v.handling_working_days)
        for v in judging.verdicts(facts, ratings)
    )


async def chunks(
    session: AsyncSession, period: Period, procedures: dict[str, Procedure]
) -> AsyncIterator[tuple[list[DossierFacts], list[RatingFacts]]]:
    """The range's dossiers, ``CHUNK_DOSSIERS`` at a time, with their ratings. One chunk alive at a
    time: the caller drops its references at the end of each turn, and this drops its own before
    reading the next."""
    after: str | None = None
    while True:
        facts, after = await load_facts_chunk(session, period, procedures, after=after, limit=CHUNK_DOSSIERS)
        if not facts:
            return
        ratings = await load_ratings_of(session, period, [f.dossier_id for f in facts])
        full = len(facts) == CHUNK_DOSSIERS
        yield facts, ratings
        del facts, ratings
        if not full:
            return


def subtree_verdicts_of(
    facts: Sequence[DossierFacts],
    ratings: Iterable[RatingFacts],
    judging: RangeJudging,
    *,
    subtree: frozenset[str],
    valid: Mapping[str, UnitRow],
    every: Mapping[str, UnitRow],
) -> list[tuple[str, DossierVerdict, DossierFacts]]:
    """The chunk's verdicts that count for a unit of ``subtree`` (resolved onto the units valid in
    the period, successors followed), with that unit and the dossier's facts (CPU only: in a
    worker thread)."""
    by_id = {f.dossier_id: f for f in facts}
    out: list[tuple[str, DossierVerdict, DossierFacts]] = []
    for v in judging.verdicts(facts, ratings):
        code = _resolve(v.unit_code, valid, every)
        if code in subtree:
            out.append((code, v, by_id[v.dossier_id]))
    return out


@dataclass
class SubtreeJudged:
    """One unit's subtree judged in a custom range: its verdicts (``evaluation.own``) and
    petitions (``evaluation.own_petitions``; no counts), the catalogue judged with, and which of
    its dossiers were still open, or withdrawn, at the judging instant (what points at stake
    need of their facts, kept instead of the facts)."""

    evaluation: Evaluation
    procedures: dict[str, Procedure]
    open_ids: set[str] = field(default_factory=set)
    withdrawn_ids: set[str] = field(default_factory=set)


async def range_subtree_judged(
    session: AsyncSession, *, period: Period, now: datetime, calendar: WorkingCalendar, unit_code: str
) -> SubtreeJudged:
    """``unit_code``'s subtree judged in the range chunk by chunk, the other dossiers dropped as
    judged: what the range's shortfall list and points at stake need, held for the subtree only (a
    province's share of the country, not all of it; the root's subtree is every dossier). The same
    verdicts and petitions as ``evaluate_period``'s for those units."""
    judged_at = period.judged_at(now)
    procedures = await load_procedures(session)
    petitions = await load_petitions(session, period)
    judging = RangeJudging(period, judged_at, calendar, petitions_naming(petitions))
    every, valid, children = unit_forest(await load_units(session), period)
    ev = Evaluation(period, judged_at, valid, children, {}, {})
    subtree = frozenset(ev.subtree(unit_code)) if unit_code in valid else frozenset()
    out = SubtreeJudged(ev, procedures)
    async for facts, ratings in chunks(session, period, procedures):
        kept = await asyncio.to_thread(
            subtree_verdicts_of, facts, ratings, judging, subtree=subtree, valid=valid, every=every
        )
        del facts, ratings  # released before the next chunk is read (see chunks)
        for code, v, f in kept:
            ev.own.setdefault(code, []).append(v)
            if f.open_at(judged_at):
                out.open_ids.add(v.dossier_id)
            elif f.withdrawn_before(judged_at):
                out.withdrawn_ids.add(v.dossier_id)
        del kept
    for pv in petition_verdicts(petitions, period, judged_at, calendar):
        resolved = _resolve(pv.unit_code, valid, every)
        if resolved in subtree:
            ev.own_petitions.setdefault(resolved, []).append(pv)
    return out


async def evaluate_range_counts(
    session: AsyncSession,
    *,
    period: Period,
    now: datetime,
    calendar: WorkingCalendar,
    units: Sequence[UnitRow] | None = None,
) -> Evaluation:
    """``period``'s counts per unit subtree (no verdict kept), equal to ``evaluate_period``'s.
    ``units``: the unit rows to count on (``mapping=today`` rewrites them); default the table's."""
    judged_at = period.judged_at(now)
    procedures = await load_procedures(session)
    petitions = await load_petitions(session, period)
    judging = RangeJudging(period, judged_at, calendar, petitions_naming(petitions))
    counters = RangeCounters()
    async for facts, ratings in chunks(session, period, procedures):
        await asyncio.to_thread(fold_chunk, counters, facts, ratings, judging)
        del facts, ratings  # released before the next chunk is read (see chunks)
    every = units if units is not None else await load_units(session)

    def counted() -> Evaluation:  # CPU only: in the worker thread
        return roll_up(
            period=period,
            judged_at=judged_at,
            units=every,
            own=counters.tallies(),
            petitions=petition_verdicts(petitions, period, judged_at, calendar),
            procedures=procedures,
            calendar=calendar,
        )

    return await asyncio.to_thread(counted)
