"""A dossier's contributions equal its verdicts judged period by period.

``contributions`` shares work between the periods judged at one instant (the clock replayed
once) and compares instants in UTC; each row must still be what :func:`evaluate` gives for that
period alone.
"""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scoring.domain import DomainEvent, evaluate, fold_dossier
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


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=dossiers(), now=st.sampled_from(NOWS))
def test_contributions_equal_each_period_judged_alone(events: list[DomainEvent], now: datetime) -> None:
    facts = fold_dossier("D", events, PROCS)
    assert facts is not None
    rows, _ = contributions(facts, now, CAL)
    expected = []
    for p in candidate_periods(facts, now)[0]:
        judged_at = p.judged_at(now)
        v = evaluate(facts, p, judged_at, CAL)
        flags = flags_of(v) if facts.received_at < judged_at else 0
        expected.append((p.label, v.unit_code, v.procedure_code, flags, v.handling_working_days))
    assert sorted((c.period, c.unit_code, c.procedure_code, c.flags, c.handling_days) for c in rows) == sorted(expected)
