"""A dossier's contribution (đóng góp) to each period it touches: the flags the counts need.

Scoring a period used to judge every one of its dossiers on every refresh. Instead, each dossier
is judged once per period when it changes (with the domain's own :func:`evaluate`), and the
verdict is kept as one row of bit flags (:func:`flags_of`, from the indicator declarations in
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

from services.scoring.domain import NO_FEEDBACK, DossierFacts, DossierFeedback, Period, evaluate, parse_period
from services.scoring.domain.definitions import F as F  # the stored bits (re-exported)
from services.scoring.domain.definitions import flags_of
from services.scoring.domain.period import utc_bounds
from services.scoring.domain.period_labels import history_floor, month_span
from services.scoring.domain.verdict import AsOf, as_of
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


def next_month_start(now: datetime) -> datetime:
    d = local_date(now)
    return start_of_day(d.replace(year=d.year + (d.month == 12), month=d.month % 12 + 1, day=1))


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


@lru_cache(maxsize=4096)
def _periods(labels: frozenset[str]) -> tuple[Period, ...]:
    return tuple(map(period_of, sorted(labels)))


def candidate_periods(facts: DossierFacts, now: datetime) -> tuple[list[Period], bool]:
    """Periods the dossier may count in (as ``load_facts`` selects them), started by ``now``;
    and whether it may later touch a period that has not started yet."""
    end = facts.finished_at if facts.finished_at is not None else now
    labels = month_span(facts.received_at, end, since=history_floor(now))
    started = _started(labels, now)
    may_grow = facts.finished_at is None or len(started) < len(labels)
    return list(started), may_grow


@lru_cache(maxsize=4096)
def _started(labels: frozenset[str], now: datetime) -> tuple[Period, ...]:
    """The periods of ``labels`` started by ``now`` (a judging pass has one ``now``, few spans)."""
    return tuple(p for p in _periods(labels) if utc_bounds(p)[0] <= now)


def contributions(
    facts: DossierFacts, now: datetime, calendar: WorkingCalendar, feedback: DossierFeedback = NO_FEEDBACK
) -> tuple[list[Contribution], datetime | None]:
    """The dossier's rows for every candidate period, and when it must be judged again.
    ``feedback``: its ratings and the petitions naming it (5.4's exception flag)."""
    now = now.astimezone(UTC)  # every instant compared below in one tzinfo (see utc_bounds)
    periods, may_grow = candidate_periods(facts, now)
    times = fact_times(facts) + feedback.times()
    rows: list[Contribution] = []
    recheck = next_month_start(now) if may_grow else None
    instants: dict[datetime, AsOf] = {}  # shared by the periods judged at one instant (month, quarter, year)
    for p in periods:
        start, end = utc_bounds(p)
        judged_at = max(start, min(end, now))  # p.judged_at(now), in UTC
        at = instants.get(judged_at)
        if at is None:
            at = instants[judged_at] = as_of(facts, judged_at, calendar, feedback)
        v = evaluate(facts, p, judged_at, calendar, at, explain=False)  # flags only
        valid_until: datetime | None = None
        if judged_at < end:
            pending = [t for t in times if judged_at <= t < end]
            if v.clock_end_at is None and v.due_at is not None and judged_at <= v.due_at < end:
                pending.append(v.due_at)
            valid_until = min(pending, default=None)
        flags = flags_of(v) if facts.received_at < judged_at else 0
        rows.append(
            Contribution(facts.dossier_id, p.label, v.unit_code, v.procedure_code, flags, v.handling_working_days)
        )
        if valid_until is not None and (recheck is None or valid_until < recheck):
            recheck = valid_until
    return rows, recheck
