"""Judging's shared-work path gives exactly what judging each period alone gave (session 8).

``contributions`` judges a dossier once per instant (one verdict placed in the month, the
quarter and the year; the instant's flags once, the period's bits per period; the next change
found once), ``dedupe_and_sort`` sorts by time first, ``as_of`` and ``verdict_as_of`` build their
records in one pass. The reference below is the code as it was before (commit 628125e): a full
verdict per period through :func:`flags_of`, the pending instants scanned per period. On a
simulated month (with ratings and petitions, and a dossier that cannot be judged), judged at
instants inside the month, at its end, in the next month and in the next year, every
contribution, recheck instant, stored facts text and set-aside reason must be the same, and so
must every verdict :func:`evaluate` explains.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.scoring.adapters.codec import facts_json
from services.scoring.adapters.repository import feedback_of_rows
from services.scoring.application.judging import _event, judge_rows
from services.scoring.domain import NO_FEEDBACK, DomainEvent, DossierFeedback, Procedure, evaluate, fold_dossier
from services.scoring.domain.calendar_cache import CachedCalendar
from services.scoring.domain.contributions import Contribution, candidate_periods, contributions, fact_times
from services.scoring.domain.definitions import flags_of
from services.scoring.domain.dossier import DossierFacts, clock_as_of
from services.scoring.domain.events import dedupe_and_sort, procedure_from_data
from services.scoring.domain.period import Period, utc_bounds
from services.scoring.domain.verdict import AsOf, DossierVerdict, _shortfalls
from shared.calendar import WorkingCalendar, local_date
from sim.clock import DAY, day_of
from sim.generate import Anomalies, Config, Generator
from sim.world import build_world

Row = tuple[Any, ...]


# -- the reference: judging as it was before (628125e) ------------------------------------------
def reference_as_of(
    facts: DossierFacts, judged_at: datetime, calendar: WorkingCalendar, feedback: DossierFeedback
) -> AsOf:
    clock = clock_as_of(facts, judged_at, calendar)
    completed = facts.terminal_kind == "completed" and facts.finished_at is not None and facts.finished_at < judged_at
    on_time = clock.on_time(judged_at)
    late = 0
    if not on_time and clock.due_at is not None:
        late = calendar.working_days_late(clock.due_at, clock.clock_end_at or judged_at)
    handling_days: int | None = None
    if clock.clock_end_at is not None:
        span = calendar.working_days_between(local_date(facts.received_at), local_date(clock.clock_end_at))
        handling_days = max(0, span - clock.paused_working_days)
    digits = [d for d in facts.digitisations if d.at < judged_at]
    return AsOf(
        judged_at=judged_at,
        clock=clock,
        completed=completed,
        on_time=on_time,
        working_days_late=late,
        handling_working_days=handling_days,
        unit_code=facts.unit_as_of(judged_at),
        payments=tuple(p for p in facts.payments if p.at < judged_at),
        digitised=sum(d.components for d in digits) > 0,
        reused=sum(d.reused for d in digits) > 0,
        personal_store=facts.personal_store_used or any(d.from_personal_store > 0 for d in digits),
        synced=facts.synced_at is not None and facts.synced_at < judged_at,
        result_digitized=completed and facts.result_digitized,
        officer_ids=tuple((o.event_type, o.officer_id) for o in facts.officers if o.at < judged_at),
        feedback_exception=feedback.exception(judged_at),
    )


def reference_evaluate(facts: DossierFacts, period: Period, at: AsOf) -> DossierVerdict:
    clock = at.clock
    start, end = utc_bounds(period)
    received_in = start <= facts.received_at < end and facts.received_at < at.judged_at
    open_at_start = clock.clock_end_at is None or clock.clock_end_at >= start
    handled = received_in or (facts.received_at < start and open_at_start)
    ended_in = clock.clock_end_at is not None and start <= clock.clock_end_at < end
    proc = facts.procedure
    pays = at.payments
    verdict = DossierVerdict(
        dossier_id=facts.dossier_id,
        unit_code=at.unit_code,
        procedure_code=facts.procedure_code,
        received_at=facts.received_at,
        received_in_period=received_in,
        handled_in_period=handled,
        finished=clock.clock_end_at is not None,
        completed=at.completed,
        on_time=at.on_time,
        due_at=clock.due_at,
        clock_end_at=clock.clock_end_at,
        working_days_late=at.working_days_late,
        handling_working_days=at.handling_working_days if ended_in else None,
        synced=at.synced,
        result_digitized=at.result_digitized,
        digitised=at.digitised,
        reused=at.reused,
        personal_store=at.personal_store,
        population_data_used=facts.population_data_used,
        online=facts.channel == "online",
        returns_document=bool(proc and proc.returns_document),
        has_fee=bool(proc and proc.has_fee),
        for_citizens=bool(proc and proc.for_citizens),
        has_payment=bool(pays),
        paid_online=any(p.online for p in pays),
        paid_online_in_period=any(p.online and start <= p.at < end for p in pays),
        payments_all_zero=bool(pays) and all(p.amount_vnd == 0 for p in pays),
        receiving_officer_id=facts.receiving_officer_id,
        responsible_officer_id=at.officer_ids[-1][1] if at.officer_ids else None,
        officer_ids=at.officer_ids,
        due_unknown=clock.due_at is None,
        feedback_exception=at.feedback_exception,
    )
    verdict.shortfalls.update(_shortfalls(verdict, clock))
    return verdict


def reference_contributions(
    facts: DossierFacts, now: datetime, calendar: WorkingCalendar, feedback: DossierFeedback
) -> tuple[list[Contribution], datetime | None]:
    from services.scoring.domain.contributions import next_month_start

    now = now.astimezone(UTC)
    periods, may_grow = candidate_periods(facts, now)
    times = fact_times(facts) + feedback.times()
    rows: list[Contribution] = []
    recheck = next_month_start(now) if may_grow else None
    for p in periods:
        start, end = utc_bounds(p)
        judged_at = max(start, min(end, now))
        v = reference_evaluate(facts, p, reference_as_of(facts, judged_at, calendar, feedback))
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


def reference_sort(events: list[DomainEvent]) -> list[DomainEvent]:
    return sorted({e.key: e for e in events}.values(), key=DomainEvent.sort_key)


# -- a simulated month, as judging reads it ----------------------------------------------------
OCT_START = day_of(datetime(2026, 10, 1).date()) * DAY
OCT_END = day_of(datetime(2026, 11, 1).date()) * DAY - 1
# A due time in year 1: the calendar cannot move it (set aside, never judged).
POISON = [
    ("X-1", "tms", "x1", "dossier.received", datetime(2026, 10, 5, 3, tzinfo=UTC), {"dossier_id": "X-1"}),
    ("X-1", "tms", "x2", "dossier.supplement_requested", datetime(2026, 10, 6, 3, tzinfo=UTC), {"dossier_id": "X-1"}),
    (
        "X-1",
        "tms",
        "x3",
        "dossier.supplement_received",
        datetime(2026, 10, 7, 3, tzinfo=UTC),
        {"dossier_id": "X-1", "due_at": "0001-01-01T00:00:00+07:00"},
    ),
    # Due at the very end of time (no UTC form): judged, open, its due time never passes.
    (
        "X-2",
        "tms",
        "x4",
        "dossier.received",
        datetime(2026, 10, 5, 3, tzinfo=UTC),
        {"dossier_id": "X-2", "due_at": "9999-12-31T23:00:00-05:00"},
    ),
]


class Month:
    def __init__(self) -> None:
        gen = Generator(
            build_world(11),
            Config(seed=11, t_start=OCT_START, t_end=OCT_END, scale=0.01, feedback=True, anomalies=Anomalies()),
        )
        self.procedures: dict[str, Procedure] = {}
        self.rows: dict[str, list[Row]] = {}
        for _, line in gen.lines():
            e = orjson.loads(line)
            if e["type"] == "procedure.upserted":
                self.procedures[e["data"]["procedure_code"]] = procedure_from_data(e["data"])
                continue
            did = e["data"]["dossier_id"]
            at = datetime.fromisoformat(e["occurred_at"]).astimezone(UTC)
            self.rows.setdefault(did, []).append((did, e["source"], e["event_id"], e["type"], at, e["data"]))
        for r in POISON:
            self.rows.setdefault(r[0], []).append(r)
        self.rows = {i: [(*r[:5], orjson.dumps(r[5]).decode()) for r in rs] for i, rs in self.rows.items()}
        ratings = [
            (i["body"]["dossier_id"], i["body"]["level"], datetime.fromtimestamp(i["t"], UTC))
            for i in gen.feedback
            if i["kind"] == "rating" and i["body"].get("dossier_id") in self.rows
        ]
        petitions = [
            (i["body"]["dossier_id"], datetime.fromtimestamp(i["t"], UTC))
            for i in gen.feedback
            if i["kind"] == "petition" and i["body"].get("dossier_id") in self.rows
        ]
        self.ratings, self.petitions = ratings, petitions  # as judging reads them
        self.feedback = feedback_of_rows(ratings, petitions)

    def events(self) -> dict[str, Iterator[DomainEvent]]:
        return {i: map(_event, rs) for i, rs in self.rows.items()}


@pytest.fixture(scope="module")
def month() -> Month:
    return Month()


# Inside the month (later facts not known yet), its last evening, the next month, the next year.
NOWS = [
    datetime(2026, 10, 9, 4, 30, tzinfo=UTC),
    datetime(2026, 10, 20, 11, tzinfo=UTC),
    datetime(2026, 10, 31, 16, 59, 59, tzinfo=UTC),
    datetime(2026, 11, 12, 2, tzinfo=UTC),
    datetime(2027, 1, 6, 8, tzinfo=UTC),
]


@pytest.mark.parametrize("now", NOWS, ids=lambda n: n.isoformat())
def test_judging_a_month_is_what_judging_each_period_alone_gave(month: Month, now: datetime) -> None:
    calendar = CachedCalendar()  # the worker's
    judged = judge_rows(month.events(), month.procedures, now, calendar, month.feedback)

    expected_rows: list[Contribution] = []
    expected_rechecks: dict[str, datetime | None] = {}
    expected_facts: dict[str, str] = {}
    expected_aside: dict[str, str] = {}
    reference_calendar = WorkingCalendar()  # the plain one: no memo shared with the path under test
    for dossier_id, rows in month.rows.items():
        events = [_event(r) for r in rows]
        assert dedupe_and_sort(events) == reference_sort(events)
        try:
            facts = fold_dossier(dossier_id, events, month.procedures)
            if facts is None:
                expected_rechecks[dossier_id] = None
                continue
            feedback = month.feedback.get(dossier_id, NO_FEEDBACK)
            cs, recheck = reference_contributions(facts, now, reference_calendar, feedback)
            expected_facts[dossier_id] = facts_json(facts)
        except Exception as exc:
            expected_aside[dossier_id] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        expected_rows += cs
        expected_rechecks[dossier_id] = recheck
        # Every verdict the explanations show (evaluate: verdict_as_of placed in the period).
        for p in candidate_periods(facts, now)[0]:
            judged_at = p.judged_at(now).astimezone(UTC)
            at = reference_as_of(facts, judged_at, reference_calendar, feedback)
            assert evaluate(facts, p, judged_at, calendar, feedback=feedback) == reference_evaluate(facts, p, at)

    assert "X-1" in expected_aside and "X-2" in expected_rechecks  # the odd dossiers are exercised
    assert len(expected_rows) > 1000 and any(c.flags for c in expected_rows)
    assert judged.contributions == expected_rows
    assert judged.rechecks == expected_rechecks
    # The same instants in the same zones (stored as timestamptz either way).
    assert {i: r and r.utcoffset() for i, r in judged.rechecks.items()} == {
        i: r and r.utcoffset() for i, r in expected_rechecks.items()
    }
    assert {i: f[4] for i, f in judged.facts.items()} == expected_facts
    assert judged.unjudgeable == expected_aside


def test_the_reference_is_not_blind(month: Month) -> None:
    """The comparison above would see a wrong bit: one flipped flag differs from the reference."""
    now = NOWS[1]
    dossier_id = next(i for i in month.rows if i != "X-1")
    facts = fold_dossier(dossier_id, [_event(r) for r in month.rows[dossier_id]], month.procedures)
    assert facts is not None
    rows, _ = contributions(facts, now, CachedCalendar())
    flipped = [c._replace(flags=c.flags ^ 1) for c in rows]
    assert flipped != reference_contributions(facts, now, WorkingCalendar(), NO_FEEDBACK)[0]
    assert rows == reference_contributions(facts, now, WorkingCalendar(), NO_FEEDBACK)[0]
