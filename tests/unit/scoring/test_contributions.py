"""A dossier's contributions equal its verdicts judged period by period.

``contributions`` shares work between the periods judged at one instant (the clock replayed
once) and compares instants in UTC; each row must still be what :func:`evaluate` gives for that
period alone — with the dossier's ratings and the petitions naming it (5.4's exception flag) —
and the rows stay exact until the recheck instant it returns.
"""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scoring.domain import DomainEvent, DossierFeedback, RatingFacts, evaluate, fold_dossier
from services.scoring.domain.contributions import candidate_periods, contributions
from services.scoring.domain.definitions import flags_of
from shared.calendar import VN_TZ

from .helpers import CAL, PROCS, t

START = t(9, 20)
TYPES = [
    "supplement_requested",
    "supplement_received",
    "transferred",
    "completed",
    "withdrawn",
    "components_digitized",
    "paid",
    "synced",
]
# Judging instants: inside a month, on a month's and a quarter's last evening, in the next year.
NOWS = [t(10, 3), t(10, 31, 23), datetime(2026, 12, 31, 23, 30, tzinfo=VN_TZ), datetime(2027, 1, 20, tzinfo=VN_TZ)]


@st.composite
def dossiers(draw: st.DrawFn) -> list[DomainEvent]:
    def at() -> datetime:
        instant = START + timedelta(hours=9 * draw(st.integers(0, 160)))
        return instant.astimezone(UTC) if draw(st.booleans()) else instant  # stored times are UTC

    events = [
        DomainEvent(
            "tms",
            "r",
            "dossier.received",
            at(),
            {
                "dossier_id": "D",
                "procedure_code": draw(st.sampled_from(sorted(PROCS))),
                "unit_code": "U1",
                "channel": draw(st.sampled_from(["online", "counter"])),
                "population_data_used": draw(st.booleans()),
            },
        )
    ]
    for k in range(draw(st.integers(0, 6))):
        typ = draw(st.sampled_from(TYPES))
        data: dict[str, object] = {"dossier_id": "D"}
        if typ == "transferred":
            data.update(to_unit_code="U2")
        elif typ == "completed":
            data.update(result_digitized=draw(st.booleans()))
        elif typ == "components_digitized":
            data.update(components=1, reused=draw(st.integers(0, 1)))
        elif typ == "paid":
            data.update(amount_vnd=draw(st.sampled_from([0, 1000])), channel=draw(st.sampled_from(["gateway", "bank"])))
        events.append(DomainEvent("tms", f"e{k}", f"dossier.{typ}", at(), data))
    return events


@st.composite
def feedbacks(draw: st.DrawFn, around: datetime = START + timedelta(days=30)) -> DossierFeedback:
    """Ratings (ties at one instant included) and petitions at coarse times within 60 days of
    ``around`` (by default the middle of the events' span)."""

    def at() -> datetime:
        return around + timedelta(hours=24 * draw(st.integers(-60, 60)))

    levels = st.sampled_from(["very_satisfied", "satisfied", "dissatisfied"])
    ratings = tuple(RatingFacts("D", draw(levels), {}, at()) for _ in range(draw(st.integers(0, 3))))
    return DossierFeedback(ratings, tuple(at() for _ in range(draw(st.integers(0, 1)))))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=dossiers(), now=st.sampled_from(NOWS), feedback=feedbacks())
def test_contributions_equal_each_period_judged_alone(
    events: list[DomainEvent], now: datetime, feedback: DossierFeedback
) -> None:
    facts = fold_dossier("D", events, PROCS)
    assert facts is not None
    rows, _ = contributions(facts, now, CAL, feedback)
    expected = []
    for p in candidate_periods(facts, now)[0]:
        judged_at = p.judged_at(now)
        v = evaluate(facts, p, judged_at, CAL, feedback=feedback)
        flags = flags_of(v) if facts.received_at < judged_at else 0
        expected.append((p.label, v.unit_code, v.procedure_code, flags, v.handling_working_days))
    assert sorted((c.period, c.unit_code, c.procedure_code, c.flags, c.handling_days) for c in rows) == sorted(expected)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=dossiers(), now=st.sampled_from(NOWS), later=st.integers(1, 24 * 60), data=st.data())
def test_rows_stay_exact_until_the_recheck(
    events: list[DomainEvent], now: datetime, later: int, data: st.DataObject
) -> None:
    """Judged at ``now``, a period's row is what judging at any later instant before the recheck
    gives (a rating or a petition dated after ``now`` is such an instant, as an event is)."""
    facts = fold_dossier("D", events, PROCS)
    assert facts is not None
    feedback = data.draw(feedbacks(around=now))
    rows, recheck = contributions(facts, now, CAL, feedback)
    then = now + timedelta(hours=later)
    if recheck is not None and then >= recheck:
        then = max(now, recheck - timedelta(microseconds=1))
    again, _ = contributions(facts, then, CAL, feedback)
    assert {(c.period, c) for c in again if c.period in {r.period for r in rows}} == {(c.period, c) for c in rows}
