"""A dossier's contribution (đóng góp) to each period it touches: the flags the counts need.

Scoring a period used to judge every one of its dossiers on every refresh. Instead, each dossier
is judged once per period when it changes (with the domain's own :func:`evaluate`), and the
verdict is kept as one row of bit flags (:func:`~.definitions.flags_of`, from the indicator declarations in
:mod:`.definitions`); a period's counts are then sums over those rows
(:mod:`services.scoring.application.aggregate`).

A row judged at ``now`` stays exact until the earliest instant at or after the judging instant,
before the period ends, at which the verdict could change by the passing of time alone (a fact's
time becoming "known" — a rating or a petition naming the dossier included — or an open
dossier's due time passing): a due-time index, not a rescan. A closed period is judged at its
end and never expires. The dossier's ``recheck_at`` is the earliest such instant over its
periods and, while its clock may still run into a month not started yet, the start of the next
month (it must then contribute to that month too).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from services.scoring.domain import NO_FEEDBACK, DossierFacts, DossierFeedback, Period, parse_period
from services.scoring.domain.definitions import F as F  # the stored bits (re-exported)
from services.scoring.domain.definitions import instant_flags_of, period_flags_of
from services.scoring.domain.period import utc_bounds
from services.scoring.domain.period_labels import history_floor, month_span
from services.scoring.domain.verdict import AsOf, DossierVerdict, as_of, in_period, verdict_as_of
from shared.calendar import WorkingCalendar, local_date, start_of_day


class Contribution(NamedTuple):
    """One stored row (``scoring.contribution``), in the table's columns' meaning. A tuple: a
    chunk compares ~3 stored and ~3 new rows a dossier, and builds as many (C-level equality and
    construction, ≈ 4× cheaper than a frozen dataclass)."""

    dossier_id: str
    period: str
    unit_code: str  # as of the judging instant; mapped to the valid unit at aggregation
    procedure_code: str
    flags: int
    handling_days: int | None


@lru_cache(maxsize=4096)
def period_of(label: str) -> Period:
    return parse_period(label)


@lru_cache(maxsize=64)  # one judging pass has one ``now``
def next_month_start(now: datetime) -> datetime:
    d = local_date(now)
    return start_of_day(d.replace(year=d.year + (d.month == 12), month=d.month % 12 + 1, day=1))


@lru_cache(maxsize=64)
def _floor_utc(now: datetime) -> datetime:
    """:func:`history_floor` in UTC: compared with stored (UTC) instants, ≈ 1.5 µs less a comparison."""
    return history_floor(now).astimezone(UTC)


def fact_times(facts: DossierFacts) -> list[datetime]:
    """Every instant whose becoming "known" can change a verdict."""
    out = [facts.received_at]
    out += [s.at for s in facts.steps]
    out += [t.at for t in facts.transfers]
    out += [d.at for d in facts.digitisations]
    out += [p.at for p in facts.payments]
    out += [o.at for o in facts.officers]
    out += [t for t in (facts.synced_at, facts.finished_at) if t is not None]
    return out


class _Bounds(NamedTuple):
    period: Period
    start: datetime  # utc_bounds(period)
    end: datetime


@lru_cache(maxsize=4096)
def _periods(labels: frozenset[str]) -> tuple[_Bounds, ...]:
    return tuple(_Bounds(p, *utc_bounds(p)) for p in map(period_of, sorted(labels)))


def _candidates(facts: DossierFacts, now: datetime) -> tuple[tuple[_Bounds, ...], bool]:
    end = facts.finished_at if facts.finished_at is not None else now
    labels = month_span(facts.received_at, end, since=_floor_utc(now))
    started = _started(labels, now)
    return started, facts.finished_at is None or len(started) < len(labels)


def candidate_periods(facts: DossierFacts, now: datetime) -> tuple[list[Period], bool]:
    """Periods the dossier may count in (as ``load_facts`` selects them), started by ``now``;
    and whether it may later touch a period that has not started yet."""
    started, may_grow = _candidates(facts, now.astimezone(UTC))
    return [b.period for b in started], may_grow


@lru_cache(maxsize=4096)
def _started(labels: frozenset[str], now: datetime) -> tuple[_Bounds, ...]:
    """The periods of ``labels`` started by ``now`` (a judging pass has one ``now``, few spans)."""
    return tuple(b for b in _periods(labels) if b.start <= now)


class _Instant(NamedTuple):
    """What the periods judged at one instant share (a running month, its quarter and year)."""

    at: AsOf
    verdict: DossierVerdict  # verdict_as_of(at), placed in each period in turn
    flags: int  # instant_flags_of(verdict)
    next_change: datetime | None  # the earliest instant at or after it that can change a verdict


def _instant(
    facts: DossierFacts, judged_at: datetime, calendar: WorkingCalendar, feedback: DossierFeedback
) -> _Instant:
    at = as_of(facts, judged_at, calendar, feedback)
    v = verdict_as_of(facts, at)
    # A fact's time becoming known, or an open dossier's due time passing.
    later = [t for t in fact_times(facts) if t >= judged_at]
    if feedback is not NO_FEEDBACK:
        later += [t for t in feedback.times() if t >= judged_at]
    due = at.clock.due_at
    # As it is (not converted to UTC: a due time near year 9999 has no UTC form, yet is judged).
    if at.clock.clock_end_at is None and due is not None and due >= judged_at:
        later.append(due)
    return _Instant(at, v, instant_flags_of(v), min(later, default=None))


def contributions(
    facts: DossierFacts, now: datetime, calendar: WorkingCalendar, feedback: DossierFeedback = NO_FEEDBACK
) -> tuple[list[Contribution], datetime | None]:
    """The dossier's rows for every candidate period, and when it must be judged again.
    ``feedback``: its ratings and the petitions naming it (5.4's exception flag).

    Each row is :func:`~.verdict.evaluate`'s verdict for its period alone through
    :func:`~.definitions.flags_of` (tests/unit/scoring/test_contributions.py, test_judging_sameness.py);
    the periods judged at one instant share its :class:`_Instant`."""
    now = now.astimezone(UTC)  # every instant compared below in one tzinfo (see utc_bounds)
    periods, may_grow = _candidates(facts, now)
    rows: list[Contribution] = []
    recheck = next_month_start(now) if may_grow else None
    instants: dict[datetime, _Instant] = {}
    received_at = facts.received_at
    for p, start, end in periods:
        judged_at = now if now < end else end  # p.judged_at(now), in UTC (a candidate started by now)
        inst = instants.get(judged_at)
        if inst is None:
            inst = instants[judged_at] = _instant(facts, judged_at, calendar, feedback)
        v = in_period(inst.verdict, facts, inst.at, start, end)
        flags = inst.flags | period_flags_of(v) if received_at < judged_at else 0
        rows.append(
            Contribution(facts.dossier_id, p.label, v.unit_code, v.procedure_code, flags, v.handling_working_days)
        )
        # The row stays exact until the earliest change before the period ends (a closed
        # period, judged at its end, never changes).
        valid_until = inst.next_change
        if valid_until is not None and valid_until < end and (recheck is None or valid_until < recheck):
            recheck = valid_until
    return rows, recheck
