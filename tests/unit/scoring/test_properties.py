"""The scores depend only on the SET of events: any order, any repetition."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scoring.domain import (
    DomainEvent,
    compute_counts,
    evaluate,
    fold_dossier,
    load_builtin,
    parse_period,
    score,
)

from .helpers import CAL, PROCS, t

OCT = parse_period("2026-10")
TAX = load_builtin("tax-2025")
PORTAL = load_builtin("portal-766")
START = t(9, 25)

TYPES = [
    "received",
    "supplement_requested",
    "supplement_received",
    "transferred",
    "completed",
    "withdrawn",
    "components_digitized",
    "paid",
    "synced",
    "result_returned",
]


@st.composite
def event_sets(draw: st.DrawFn) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    n_dossiers = draw(st.integers(1, 3))
    for d in range(n_dossiers):
        did = f"D{d}"
        for k in range(draw(st.integers(1, 8))):
            typ = draw(st.sampled_from(TYPES))
            # Coarse times so that ties (same instant) happen often.
            at = START + timedelta(hours=12 * draw(st.integers(0, 80)))
            data: dict[str, object] = {"dossier_id": did}
            if typ == "received":
                data.update(
                    procedure_code=draw(st.sampled_from(sorted(PROCS))),
                    unit_code="U1",
                    due_at=None,
                    channel=draw(st.sampled_from(["online", "counter"])),
                    online_level="full",
                    applicant_type="citizen",
                    officer_id=draw(st.sampled_from(["O1", "O2"])),
                    population_data_used=draw(st.booleans()),
                    personal_store_used=False,
                )
            elif typ == "transferred":
                data.update(to_unit_code=draw(st.sampled_from(["U1", "U2"])), officer_id="O3")
            elif typ == "completed":
                data.update(outcome="approved", result_digitized=draw(st.booleans()), officer_id="O4")
            elif typ == "components_digitized":
                data.update(components=1, reused=draw(st.integers(0, 1)), from_personal_store=0)
            elif typ == "paid":
                data.update(
                    amount_vnd=draw(st.sampled_from([0, 1000])), channel=draw(st.sampled_from(["gateway", "counter"]))
                )
            elif typ == "supplement_received":
                data.update(due_at=None)
            events.append(DomainEvent("tms", f"{did}-{k}", f"dossier.{typ}", at, data))
    return events


def outcome(events: list[DomainEvent]) -> tuple[object, ...]:
    facts = {}
    for did in sorted({str(e.data["dossier_id"]) for e in events}):
        facts[did] = fold_dossier(did, [e for e in events if e.data["dossier_id"] == did], PROCS, CAL)
    vs = [evaluate(f, OCT, OCT.end, CAL) for f in facts.values() if f is not None]
    counts = compute_counts(vs, PROCS, {"local", "province"})
    return facts, vs, counts, score(TAX, counts), score(PORTAL, counts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_sets(), data=st.data())
def test_permutation_and_duplication_invariance(events: list[DomainEvent], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=len(events))) if events else []
    assert outcome(events) == outcome(list(shuffled) + dupes)
