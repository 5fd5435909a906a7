from datetime import date

from services.scoring.domain import (
    NO_FEEDBACK,
    Count,
    DomainEvent,
    DossierFeedback,
    DossierVerdict,
    PetitionFacts,
    Procedure,
    RatingFacts,
    compute_catalogue_counts,
    compute_counts,
    evaluate,
    evaluate_petition,
    fold_dossier,
    parse_period,
)
from services.scoring.domain.feedback import NAMED_IN_PETITION, RATED_DISSATISFIED

from .helpers import CAL, PROCS, completed, ev, received, t

OCT = parse_period("2026-10")


def verdicts(*dossiers: list[DomainEvent], feedback: dict[str, DossierFeedback] | None = None) -> list[DossierVerdict]:
    feedback = feedback or {}
    out: list[DossierVerdict] = []
    for i, events in enumerate(dossiers):
        did = f"D{i}"
        evs = [
            e.__class__(e.source, f"{did}-{e.event_id}", e.type, e.occurred_at, {**e.data, "dossier_id": did})
            for e in events
        ]
        f = fold_dossier(did, evs, PROCS, CAL)
        assert f is not None
        out.append(evaluate(f, OCT, OCT.end, CAL, feedback=feedback.get(did, NO_FEEDBACK)))
    return out


def test_dossier_counts() -> None:
    vs = verdicts(
        # online, synced, on time, digitised, e-result, paid online (fee procedure P5? no: P3)
        [
            received(t(10, 5)),
            ev("synced", t(10, 5, 10)),
            ev("components_digitized", t(10, 5), components=1, reused=1, from_personal_store=0),
            completed(t(10, 6)),
        ],
        # counter, P5 (fee), paid at the counter, overdue, not synced
        [
            received(
                t(10, 5), procedure_code="P5", channel="counter", population_data_used=False, personal_store_used=False
            ),
            ev("paid", t(10, 5), amount_vnd=1000, channel="counter"),
            completed(t(10, 30)),
        ],
        # P5 paid 0 VND only: out of 4.6's denominator
        [
            received(t(10, 6), procedure_code="P5"),
            ev("paid", t(10, 6), amount_vnd=0, channel="gateway"),
            ev("synced", t(10, 6)),
        ],
        # P5 paid online
        [
            received(t(10, 7), procedure_code="P5"),
            ev("paid", t(10, 7), amount_vnd=500, channel="national_portal"),
            ev("synced", t(10, 7)),
        ],
        # received in September, still open on 1 October: handled, not received
        [received(t(9, 28), procedure_code="PX"), ev("synced", t(9, 28))],
    )
    c = compute_counts(vs, PROCS, {"local"})
    assert c["1.4"] == Count(4, 5)
    assert c["2.1"] == Count(1, 5)  # only D0: D1 late; D2, D3, D4 still open and past due at 31 Oct
    assert c["3.1"] == Count(2, 5)
    assert c["3.3"] == Count(1, 5)
    assert c["3.5"] == Count(4, 5)
    # citizen procedures handled: P3 only (P5 is business, PX both? target default both) → PX too
    assert c["3.6"] == Count(2, 2)
    # local procedures: P3, P5, P0 all offered online; online dossiers on P3, P5
    assert c["4.1"] == Count(3, 3)
    assert c["4.2"] == Count(2, 3)
    # 4.3: received in October: D0..D3; online & (doc → e-result): D0 (P3 e-result), D2, D3 (P5 no doc)
    # × sync rate 4/5 = 3 × 0.8 = 2.4…
    assert c["4.3"].denominator == 4 and abs(c["4.3"].numerator - 3 * 4 / 5) < 1e-12
    assert c["4.4"] == Count(1, 1)
    assert c["4.5"] == Count(1, 1)
    assert c["4.6"] == Count(1, 2)
    assert c["2.2"] == Count(1 + 19, 2)  # D0: 1 working day; D1: 5 → 30 Oct = 19; others open


def test_satisfaction_and_petitions() -> None:
    # D0 rated dissatisfied, D1 named in a petition (received 5 Oct): only D2 is satisfied.
    vs = verdicts(
        [received(t(10, 5)), completed(t(10, 6))],
        [received(t(10, 5)), completed(t(10, 6))],
        [received(t(10, 5)), completed(t(10, 6))],
        feedback={
            "D0": DossierFeedback(ratings=(RatingFacts("D0", "dissatisfied", {}, t(10, 7)),)),
            "D1": DossierFeedback(petitioned_at=(t(10, 5),)),
        },
    )
    p_on = PetitionFacts(
        "X1",
        "U1",
        "D1",
        "tthc",
        t(10, 5),
        answered_at=t(10, 9),
        published_at=t(10, 12),
        status="published",
        likes=2,
        dislikes=1,
    )
    p_late = PetitionFacts("X2", "U1", None, None, t(10, 1))  # 15 wd from 1 Oct → due 22 Oct, still open
    p_again = PetitionFacts(
        "X3", "U1", None, "staff", t(10, 5), refused_at=t(10, 6), status="refused", petitioned_again=True
    )
    pv = [evaluate_petition(p, OCT, OCT.end, CAL) for p in (p_on, p_late, p_again)]
    c = compute_counts(vs, PROCS, {"local"}, pv)
    assert c["5.4"] == Count(1, 3)
    assert [v.shortfalls.get("5.4") for v in vs] == [RATED_DISSATISFIED, NAMED_IN_PETITION, None]
    assert c["5.2"] == Count(2, 3)
    assert c["5.3"] == Count(1, 3)
    assert c["5.1"] == Count(2, 3)
    assert pv[1].shortfall is not None and "15" in pv[1].shortfall


def test_no_dossiers_gives_zero_denominators() -> None:
    c = compute_counts([], PROCS, {"central"})
    assert c["2.1"] == Count(0, 0) and c["4.1"] == Count(0, 0) and c["5.2"] == Count(0, 0)


def test_catalogue_counts() -> None:
    procs = {
        "A": Procedure(
            "A",
            published_decision_date=date(2026, 10, 1),
            legal_effective_date=date(2026, 10, 29),
            publicized_at=t(10, 15),
            complete_listing=True,
        ),
        # 20 working days after 1 Oct is 29 Oct: effective 28 Oct is too soon; publicised 16 Oct > 15 Oct
        "B": Procedure(
            "B",
            published_decision_date=date(2026, 10, 1),
            legal_effective_date=date(2026, 10, 28),
            publicized_at=t(10, 16),
        ),
        "C": Procedure(
            "C", published_decision_date=date(2026, 9, 1), legal_effective_date=date(2026, 9, 1), complete_listing=True
        ),
        "D": Procedure("D", legal_effective_date=date(2027, 1, 1), complete_listing=True),  # not in force
    }
    c = compute_catalogue_counts(procs, OCT, CAL)
    assert c["1.1"] == Count(1, 2)
    assert c["1.2"] == Count(1, 2)
    assert c["1.3"] == Count(2, 3)
