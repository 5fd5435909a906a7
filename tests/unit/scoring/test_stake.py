"""Points at stake (điểm có thể giành được), worked out by hand on a running November 2026.

Unit L1 (a local office under P1 under CT). One procedure TAX: 5 working days, offered fully
online, with a fee, no returned document. Judged now = Fri 13 Nov 2026 10:00 (the month is
running). No public holiday in November 2026. Seven dossiers, all received in November:

====  ==========  =======  ====================  ======  =========  =========  ===============
id    received    channel  due (end of day)      state   synced     digitised  payment
====  ==========  =======  ====================  ======  =========  =========  ===============
A1    Mon 2 Nov   online   Mon 9 Nov             done 5  yes        yes        online, e-result
A2    Mon 2 Nov   counter  Mon 9 Nov             done 12 (LATE)     yes        counter, e-result
A3    Tue 3 Nov   counter  Tue 10 Nov            done 6  no         no         online, NO e-result
B1    Wed 11 Nov  online   Wed 18 Nov            open    no         yes        none
B2    Thu 12 Nov  counter  Thu 19 Nov            open    yes        no         none
B3    Fri 13 Nov  counter  Fri 20 Nov            open    no         no         none
C1    Mon 2 Nov   counter  27 Nov 17:00 (given)  open    yes        no         online
====  ==========  =======  ====================  ======  =========  =========  ===============

Handled h = 7 (also received = 7, all fee-bearing). Current numerators: 2.1 on time 6 (all but
A2); 1.4 synced 4 (A1 A2 B2 C1); 3.1 e-result 2 (A1 A2); 3.2 digitised 3 (A1 A2 B1); 4.3 online
received 2 (A1 B1); 4.6 paid online 3 (A1 A3 C1); 5.4 satisfied 6 (on time, no rating/petition).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from services.scoring.application.stake import find_fixes, points_at_stake, unit_stake
from services.scoring.domain import (
    DomainEvent,
    DossierFacts,
    Period,
    compute_counts,
    fold_dossier,
    load_builtin,
    parse_period,
    procedure_from_data,
)
from services.scoring.domain.engine import Inputs, UnitRow, evaluate_period, score_period

from .helpers import CAL, completed, ev, received, t

TAX = procedure_from_data(
    {
        "procedure_code": "TAX",
        "levels": ["local"],
        "time_limit_wd": 5,
        "online_level_offered": "full",
        "has_fee": True,
        "returns_document": False,
        "target": "both",
        "complete_listing": True,
    }
)
PROCS = {"TAX": TAX}
NOV: Period = parse_period("2026-11")
NOW = t(11, 13, 10)
UNITS = [
    UnitRow("CT", "Cục Thuế", "central", None),
    UnitRow("P1", "Thuế tỉnh thử", "province", "CT"),
    UnitRow("L1", "Thuế cơ sở 1", "local", "P1"),
]
TAX_2025 = load_builtin("tax-2025")
PORTAL = load_builtin("portal-766")


def _dossier(d: str, at: datetime, channel: str, **extra: object) -> list[DomainEvent]:
    return [
        received(at, d, "TAX", "L1", channel=channel, population_data_used=False, personal_store_used=False, **extra)
    ]


def events() -> dict[str, list[DomainEvent]]:
    """The seven dossiers' events (also sent through the real handlers by the API test)."""
    return {
        "A1": [
            *_dossier("A1", t(11, 2), "online"),
            ev("components_digitized", t(11, 2, 10), "A1", components=1, reused=0, from_personal_store=0),
            ev("paid", t(11, 2, 11), "A1", amount_vnd=50_000, channel="national_portal"),
            completed(t(11, 5), "A1"),
            ev("synced", t(11, 5, 10), "A1"),
        ],
        "A2": [
            *_dossier("A2", t(11, 2), "counter"),
            ev("components_digitized", t(11, 2, 10), "A2", components=1, reused=0, from_personal_store=0),
            ev("paid", t(11, 2, 11), "A2", amount_vnd=50_000, channel="counter"),
            completed(t(11, 12), "A2"),
            ev("synced", t(11, 12, 10), "A2"),
        ],
        "A3": [
            *_dossier("A3", t(11, 3), "counter"),
            ev("paid", t(11, 3, 11), "A3", amount_vnd=50_000, channel="gateway"),
            completed(t(11, 6), "A3", result_digitized=False),
        ],
        "B1": [
            *_dossier("B1", t(11, 11), "online"),
            ev("components_digitized", t(11, 11, 10), "B1", components=2, reused=0, from_personal_store=0),
        ],
        "B2": [*_dossier("B2", t(11, 12), "counter"), ev("synced", t(11, 12, 10), "B2")],
        "B3": _dossier("B3", t(11, 13, 8), "counter"),
        "C1": [
            *_dossier("C1", t(11, 2), "counter", due_at=t(11, 27, 17).isoformat()),
            ev("paid", t(11, 2, 11), "C1", amount_vnd=50_000, channel="gateway"),
            ev("synced", t(11, 2, 12), "C1"),
        ],
    }


def _facts() -> list[DossierFacts]:
    out = [fold_dossier(d, es, PROCS) for d, es in events().items()]
    return [f for f in out if f is not None]


def _evaluation():  # type: ignore[no-untyped-def]
    return evaluate_period(Inputs(UNITS, PROCS, _facts()), NOV, NOW, CAL)


OPEN = {"B1", "B2", "B3", "C1"}


def test_fixable_dossiers_per_indicator() -> None:
    ev_ = _evaluation()
    fixes = {
        f.basis: [v.dossier_id for v in f.dossiers]
        for f in find_fixes(ev_.subtree_verdicts("L1"), period=NOV, judged_at=NOW, calendar=CAL, open_ids=OPEN)
    }
    # 2.1: horizon = end of the 5th working day after Fri 13 Nov = end of Fri 20 Nov, so B1 (18),
    # B2 (19) and B3 (20, exactly at the horizon); C1 is due 27 Nov, beyond it; A* are finished.
    assert fixes == {
        "2.1": ["B1", "B2", "B3"],
        "1.4": ["A3", "B1", "B3"],
        "3.1": ["B1", "B2", "B3", "C1"],  # open: can still be completed with an electronic result
        "3.2": ["A3", "B2", "B3", "C1"],
        "4.6": ["B1", "B2", "B3"],  # no payment yet (A2 paid at the counter: not fixable)
    }
    wider = find_fixes(ev_.subtree_verdicts("L1"), period=NOV, judged_at=NOW, calendar=CAL, open_ids=OPEN, within_wd=10)
    # 10 working days after Fri 13 Nov = Fri 27 Nov: C1 (27 Nov 17:00) is now due soon too.
    assert [v.dossier_id for v in wider[0].dossiers] == ["B1", "B2", "B3", "C1"]


def test_points_at_stake_hand_worked() -> None:
    ev_ = _evaluation()
    verdicts = ev_.subtree_verdicts("L1")
    fixes = find_fixes(verdicts, period=NOV, judged_at=NOW, calendar=CAL, open_ids=OPEN)

    def counts_of(vs):  # type: ignore[no-untyped-def]
        return compute_counts(vs, PROCS, {"local"})

    items = points_at_stake(TAX_2025, verdicts, fixes, counts_of, inherited={})
    got = [(i.indicator_id, i.points, i.dossiers) for i in items]
    # 2.1: with (now) 20 × (100 × 6/7) / 100 = 17.142857… → 17.14;
    #      without (B1–B3 overdue) 20 × (100 × 3/7) / 100 = 8.571428… → 8.57; +8.57
    #  5.4 (threshold 90): with 6 × 85.714285… / 90 = 5.714285… → 5.71;
    #      without 6 × 42.857142… / 90 = 2.857142… → 2.86; +2.85            → item +11.42
    # 1.4: 6 × 57.142857… / 100 = 3.428571… → 3.43 → 7/7 = 6.00; +2.57
    #  4.3 (threshold 50): online 2 × sync rate 4/7 = 1.142857…; P = 100 × 1.142857… / 7
    #      = 16.326530…; 6 × P / 50 = 1.959183… → 1.96 → with 2 × 7/7 = 2: P = 28.571428…,
    #      6 × P / 50 = 3.428571… → 3.43; +1.47                              → item +4.04
    # 3.1: 2/7 → 6 × 28.571428… / 100 = 1.714285… → 1.71; 6/7 → 5.142857… → 5.14  → +3.43
    # 3.2: 3/7 → 6 × 42.857142… / 100 = 2.571428… → 2.57; 7/7 → 6.00           → +3.43
    #      (ties with 3.1: shown after it, in the indicators' order)
    # 4.6 (P rounded first): r2(100 × 3/7) = 42.86 → 6 × 42.86 / 100 = 2.5716 → 2.57;
    #      r2(100 × 6/7) = 85.71 → 5.1426 → 5.14; +2.57 (4.4, 4.5 already full: 1/1) → +2.57
    assert got == [
        ("2.1", Decimal("11.42"), 3),
        ("1.4", Decimal("4.04"), 3),
        ("3.1", Decimal("3.43"), 4),
        ("3.2", Decimal("3.43"), 4),
        ("4.6", Decimal("2.57"), 3),
    ]
    first = items[0]
    assert [
        (e.indicator_id, e.numerator_without, e.numerator_with, e.points_without, e.points_with) for e in first.effects
    ] == [
        ("2.1", 3, 6, Decimal("8.57"), Decimal("17.14")),
        ("5.4", 3, 6, Decimal("2.86"), Decimal("5.71")),
    ]
    sync = items[1]
    assert {e.indicator_id: (e.points_without, e.points_with) for e in sync.effects} == {
        "1.4": (Decimal("3.43"), Decimal("6.00")),
        "4.3": (Decimal("1.96"), Decimal("3.43")),
    }
    assert first.action_en == "finish 3 dossiers due within the next 5 working days"
    assert first.name_vi == "Hồ sơ giải quyết trước hạn, đúng hạn"


def test_portal_ids_and_its_own_maxima() -> None:
    ev_ = _evaluation()
    verdicts = ev_.subtree_verdicts("L1")
    fixes = find_fixes(verdicts, period=NOV, judged_at=NOW, calendar=CAL, open_ids=OPEN)
    items = points_at_stake(PORTAL, verdicts, fixes, lambda vs: compute_counts(vs, PROCS, {"local"}), inherited={})
    got = {i.indicator_id: i.points for i in items}
    # Portal 3.2 (SO_HOA_GIAY_TO_GIAI_QUYET) weighs 4: 4 × 42.857142… / 100 = 1.714285… → 1.71;
    # 7/7 → 4.00; +2.29. Every other item as in tax-2025.
    assert got == {
        "DOSSIER_ON_TIME": Decimal("11.42"),
        "DOSSIER_SYNC": Decimal("4.04"),
        "ORIGINAL_RESULT_AVAILABLE": Decimal("3.43"),
        "SO_HOA_GIAY_TO_GIAI_QUYET": Decimal("2.29"),
        "DOSSIERS_PAID_ONLINE": Decimal("2.57"),
    }


def test_unit_stake_matches_the_breakdown_and_rolls_up() -> None:
    ev_ = _evaluation()
    rows = {r.unit_code: r for r in score_period(ev_, TAX_2025)}
    for code in ("L1", "P1", "CT"):
        st = unit_stake(ev_, code, TAX_2025, procedures=PROCS, calendar=CAL, open_ids=OPEN, withdrawn_ids=(), now=NOW)
        assert st.running
        assert st.total == rows[code].total  # the same counts and points as the breakdown
        assert st.items[0].indicator_id == "2.1"
        assert st.fixes["2.1"].dossiers and len(st.fixes["1.4"].dossiers) == 3


def test_closed_period_has_nothing_at_stake() -> None:
    october = parse_period("2026-10")
    ev_ = evaluate_period(Inputs(UNITS, PROCS, _facts()), october, NOW, CAL)
    st = unit_stake(ev_, "L1", TAX_2025, procedures=PROCS, calendar=CAL, open_ids=OPEN, withdrawn_ids=(), now=NOW)
    assert not st.running and st.items == []


def test_withdrawn_dossiers_cannot_pay() -> None:
    ev_ = _evaluation()
    fixes = find_fixes(
        ev_.subtree_verdicts("L1"),
        period=NOV,
        judged_at=NOW,
        calendar=CAL,
        open_ids=OPEN - {"B3"},
        withdrawn_ids={"B3"},
    )
    by = {f.basis: [v.dossier_id for v in f.dossiers] for f in fixes}
    assert by["4.6"] == ["B1", "B2"] and "B3" not in by["3.1"] and "B3" not in by["2.1"]
