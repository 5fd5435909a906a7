"""Numerators and denominators of every tax-2025 computation (1.1 … 5.4) for one unit or subtree.

What each computation counts is declared once in :mod:`.definitions`; here are the formulas by
kind, and the catalogue ones (1.1–1.3).

The caller passes the verdicts of the unit's dossiers (for a parent: the union of its subtree's,
never an average of children). Readings chosen where methodology.md is terse:

* "Procedures with ≥ 1 dossier in the period" (3.6, 4.2, 4.4, 4.5) means ≥ 1 dossier HANDLED in
  the period, the base shared by the dossier indicators; distinct procedure codes are counted.
* 4.1 / 4.2 "procedures the unit handles": catalogue procedures whose ``levels`` meet the levels of
  the unit (for a subtree, the levels present in it). 4.2's numerator is restricted to procedures
  offered online with a dossier received through the online channel.
* 4.3: numerator = (online dossiers received in the period that, if the procedure returns a
  document, were completed with an electronic result) × n₁.₄ / d₁.₄, computed in double in that
  order, so it can be fractional.
* 4.5 and 4.6 numerators are subsets of their denominators (fee-bearing procedures; for 4.6 the
  dossiers of fee-bearing procedures not paid wholly in 0 VND): a ratio never exceeds 100 %.
* 5.4: a dossier named in any petition received before the judging instant, or whose latest
  rating before it is ``dissatisfied``, does not count as satisfied. That is a flag of its
  verdict (``UNSATISFIED_BY_FEEDBACK``, from :class:`~.feedback.DossierFeedback`): numerator =
  the on-time counter minus ``on_time_excepted`` (handled, on time and excepted), live and from
  scratch alike.
* 2.2 (shown): numerator = working days from receipt to the end of the clock minus paused working
  days, summed over handled dossiers whose clock ended in the period; denominator = their number.
* 1.1: the decision is dated ≥ 20 working days before the effective date when adding 20 working
  days to the decision date does not pass the effective date; a missing effective date fails.
  1.2: publicised (local date) no later than 10 working days after the decision date. 1.3: in
  force = effective on or before the period's last day (or no effective date known).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from shared.calendar import WorkingCalendar, local_date

from .definitions import (
    DEFINITIONS,
    DOSSIER_RATIOS,
    ENDED,
    ENDED_DAYS,
    HANDLED,
    SUMS,
    Counter,
    Flag,
    Kind,
    flags_of,
)
from .events import Procedure
from .feedback import PetitionVerdict
from .period import Period
from .verdict import DossierVerdict


@dataclass(frozen=True, slots=True)
class Count:
    """A numerator over a denominator (tử số / mẫu số). Numerators may be fractional (4.3)."""

    numerator: float
    denominator: int


def compute_catalogue_counts(
    procedures: Mapping[str, Procedure], period: Period, calendar: WorkingCalendar
) -> dict[str, Count]:
    """1.1–1.3 from the procedure catalogue (measured at central; units below inherit)."""
    decided = [
        p
        for p in procedures.values()
        if p.published_decision_date is not None and period.first_day <= p.published_decision_date <= period.last_day
    ]
    on_time_11 = 0
    on_time_12 = 0
    for p in decided:
        assert p.published_decision_date is not None
        if p.legal_effective_date is not None and (
            calendar.add_working_days(p.published_decision_date, 20) <= p.legal_effective_date
        ):
            on_time_11 += 1
        if p.publicized_at is not None and local_date(p.publicized_at) <= calendar.add_working_days(
            p.published_decision_date, 10
        ):
            on_time_12 += 1
    in_force = [
        p for p in procedures.values() if p.legal_effective_date is None or p.legal_effective_date <= period.last_day
    ]
    return {
        "1.1": Count(on_time_11, len(decided)),
        "1.2": Count(on_time_12, len(decided)),
        "1.3": Count(sum(p.complete_listing for p in in_force), len(in_force)),
    }


def compute_counts(
    verdicts: Iterable[DossierVerdict],
    procedures: Mapping[str, Procedure],
    unit_levels: Collection[str],
    petitions: Iterable[PetitionVerdict] = (),
) -> dict[str, Count]:
    """Counts of 1.4, 2.1, 2.2, 3.1–3.6, 4.1–4.6, 5.1–5.4 for one unit or subtree, from scratch.

    The verdicts are tallied as the stored counters tally their flags, then counted by the same
    :func:`tally_counts` as the live refresh (5.4 from the verdicts' feedback exception, judged
    with the dossiers' ratings and petitions: :func:`~.verdict.evaluate`).
    """
    sums, procs = dossier_tally(list(verdicts))
    return tally_counts(sums, procs, procedures, unit_levels, petitions)


def dossier_tally(verdicts: Sequence[DossierVerdict]) -> tuple[dict[str, int], dict[str, int]]:
    """The verdicts' counters (:data:`SUMS`, ended, ended days) and, per procedure, the OR of
    its handled dossiers' flags — what the stored counters hold for the same verdicts."""
    flags = [flags_of(v) for v in verdicts]
    sums = {name: sum(1 for f in flags if f & m == m) for name, m in SUMS.items()}
    h = HANDLED.mask
    ended = [
        v.handling_working_days
        for v, f in zip(verdicts, flags, strict=True)
        if f & h and v.handling_working_days is not None
    ]
    sums[ENDED], sums[ENDED_DAYS] = len(ended), sum(ended)
    procs: dict[str, int] = {}
    for v, f in zip(verdicts, flags, strict=True):
        if f & h:
            procs[v.procedure_code] = procs.get(v.procedure_code, 0) | f
    return sums, procs


# Per set of unit levels: the catalogue procedures of those levels, and those offered online.
CatalogueCache = dict[frozenset[str], tuple[int, frozenset[str]]]


def _catalogue(
    procedures: Mapping[str, Procedure], levels: frozenset[str], cache: CatalogueCache | None
) -> tuple[int, frozenset[str]]:
    hit = cache.get(levels) if cache is not None else None
    if hit is None:
        unit_procs = [p for p in procedures.values() if p.levels & levels]
        hit = (len(unit_procs), frozenset(p.procedure_code for p in unit_procs if p.offered_online))
        if cache is not None:
            cache[levels] = hit
    return hit


def tally_counts(
    sums: Mapping[str, int],
    procs: Mapping[str, int],
    procedures: Mapping[str, Procedure],
    unit_levels: Collection[str],
    petitions: Iterable[PetitionVerdict] = (),
    cache: CatalogueCache | None = None,
) -> dict[str, Count]:
    """Every computation but 1.1–1.3 (:func:`compute_catalogue_counts`), by its declaration.

    ``sums``: the :data:`SUMS` counters, ended and ended days;
    ``procs``: per procedure with a handled dossier, the OR of those dossiers' flags. Live
    (stored counters) and from scratch (:func:`compute_counts`) alike, so the same doubles.
    """
    n_unit_procs, online_procs = _catalogue(procedures, frozenset(unit_levels), cache)
    ps = list(petitions)
    c: dict[str, Count] = {}
    for d in DEFINITIONS.values():
        num, den = d.numerator, d.denominator
        if d.kind is Kind.DOSSIER_RATIO and isinstance(num, Counter) and isinstance(den, Counter):
            n: float = sums[num.column]
            if d.scaled_by is not None:
                by = DOSSIER_RATIOS[d.scaled_by]
                by_d = sums[by[1]]
                n = n * (sums[by[0]] / by_d if by_d else 0.0)
            c[d.id] = Count(n, sums[den.column])
        elif d.kind is Kind.DOSSIER_AVERAGE:
            c[d.id] = Count(sums[ENDED_DAYS], sums[ENDED])
        elif d.kind is Kind.PROCEDURE_RATIO and isinstance(num, Flag):
            with_num = {code for code, f in procs.items() if f & num.mask}
            if d.online_catalogue:
                c[d.id] = Count(len(with_num & online_procs), len(online_procs))
            elif isinstance(den, Flag):
                c[d.id] = Count(len(with_num), sum(1 for f in procs.values() if f & den.mask))
        elif d.kind is Kind.UNIT_CATALOGUE:
            c[d.id] = Count(len(online_procs), n_unit_procs)
        elif d.kind is Kind.PETITION and d.petition is not None:
            base, prop = d.petition
            counted = [p for p in ps if getattr(p, base)]
            c[d.id] = Count(sum(bool(getattr(p, prop)) for p in counted), len(counted))
        elif d.kind is Kind.RATING and isinstance(num, Counter) and isinstance(den, Counter):
            excepted = sums[d.excepted.column] if d.excepted is not None else 0
            c[d.id] = Count(sums[num.column] - excepted, sums[den.column])
    return c
