from decimal import Decimal

from services.scoring.domain import (
    Count,
    RankInput,
    central_inheritance,
    load_builtin,
    rank,
    score,
    wilson_interval,
)
from services.scoring.domain.methodology import KNOWN_BASES

TAX = load_builtin("tax-2025")
PORTAL = load_builtin("portal-766")


def perfect(d: int = 100) -> dict[str, Count]:
    return {b: Count(d, d) for b in KNOWN_BASES}


def test_perfect_unit_scores_100_in_both() -> None:
    for m in (TAX, PORTAL):
        s = score(m, perfect())
        assert s.total == Decimal("100.00") and s.grade == "excellent" and not s.provisional


def test_same_counts_both_methodologies() -> None:
    counts = perfect()
    counts["2.1"] = Count(29, 32)
    counts["1.4"] = Count(29, 32)
    counts["3.2"] = Count(1, 2)
    counts["4.6"] = Count(2, 3)
    tax, portal = score(TAX, counts), score(PORTAL, counts)
    assert tax.indicator("2.1").points == portal.indicator("DOSSIER_ON_TIME").points == Decimal("18.13")
    assert tax.indicator("3.2").points == Decimal("3.00")
    assert portal.indicator("SO_HOA_GIAY_TO_GIAI_QUYET").points == Decimal("2.00")
    assert portal.indicator("ELECTRONIC_CERTIFIED_COPY").points == Decimal("2.00")
    # 4.6: P rounded first 66.67 → 6 × 66.67 / 100 = 4.0002 → 4.00
    assert tax.indicator("4.6").points == portal.indicator("DOSSIERS_PAID_ONLINE").points == Decimal("4.00")
    assert portal.group_points["ONLINE_PAYMENT"] == Decimal("8.00")
    assert tax.group_points["G4"] == Decimal("20.00")
    # tax-2025 moves the certified-copy 2 points onto 3.2, so totals differ by 3.2's share.
    assert portal.total - tax.total == Decimal("1.00")
    assert tax.total == sum(tax.group_points.values())


def test_zero_rules() -> None:
    counts = perfect()
    counts["1.4"] = Count(0, 0)  # null
    counts["2.1"] = Count(0, 0)  # zero
    counts["5.2"] = Count(0, 0)  # full
    s = score(TAX, counts)
    i14 = s.indicator("1.4")
    assert not i14.applicable and i14.points == 0 and i14.ratio is None and "no data" in i14.explanation
    g1 = next(g for g in s.groups if g.id == "G1")
    assert g1.max_points == 18 and g1.points == 12
    assert s.indicator("2.1").points == 0 and s.indicator("2.1").applicable
    assert s.indicator("5.2").points == 6
    assert s.provisional and s.dossiers == 0


def test_threshold_indicators_and_explanation() -> None:
    counts = perfect()
    counts["3.3"] = Count(40, 100)  # T 80 → 1.00
    counts["5.4"] = Count(45, 50)  # T 90 → full
    counts["4.3"] = Count(12.5, 100)  # fractional numerator, T 50 → 1.50
    s = score(TAX, counts)
    assert s.indicator("3.3").points == Decimal("1.00")
    assert s.indicator("5.4").points == Decimal("6.00")
    assert s.indicator("4.3").points == Decimal("1.50")
    assert "12.5" in s.indicator("4.3").explanation
    assert s.indicator("5.4").interval is not None


def test_shown_only_indicators() -> None:
    counts = perfect()
    counts["2.2"] = Count(17, 4)
    s = score(TAX, counts)
    assert s.indicator("2.2").ratio == Decimal("4.25") and s.indicator("2.2").points == 0
    assert s.indicator("5.1").points == 0


def test_inherited_central_indicators() -> None:
    central_counts = perfect()
    central_counts["1.1"] = Count(3, 4)
    central = score(TAX, central_counts)
    local_counts = perfect()
    local_counts["1.1"] = Count(0, 4)  # ignored: inherited
    s = score(TAX, local_counts, central_inheritance(central))
    assert s.indicator("1.1").inherited and s.indicator("1.1").points == Decimal("4.50")
    p = score(PORTAL, local_counts, central_inheritance(central))
    assert p.indicator("PUBLISH_ON_TIME").points == Decimal("4.50")


def test_provisional_and_wilson() -> None:
    s = score(TAX, perfect(29))
    assert s.provisional
    assert not score(TAX, perfect(30)).provisional
    low, high = wilson_interval(29, 32) or (Decimal(0), Decimal(0))
    assert Decimal("75") < low < Decimal("90.63") < high < Decimal("97")
    assert wilson_interval(0, 0) is None
    low0, _ = wilson_interval(10, 10) or (Decimal(0), Decimal(0))
    assert low0 < 100


def test_rank_competition_within_peers() -> None:
    rows = [
        RankInput("A", "local", "P1", Decimal("90")),
        RankInput("B", "local", "P1", Decimal("95")),
        RankInput("C", "local", "P1", Decimal("90")),
        RankInput("D", "local", "P1", Decimal("80")),
        RankInput("E", "local", "P2", Decimal("10")),
    ]
    prev = [RankInput("A", "local", "P1", Decimal("99")), RankInput("D", "local", "P1", Decimal("1"))]
    r = rank(rows, prev)
    assert (r["B"].rank, r["A"].rank, r["C"].rank, r["D"].rank, r["E"].rank) == (1, 2, 2, 4, 1)
    assert r["A"].rank_delta == -1 and r["D"].rank_delta == -2 and r["B"].rank_delta is None


def test_provisional_units_are_listed_not_ranked() -> None:
    rows = [
        RankInput("A", "province", "CT", Decimal("90")),
        RankInput("B", "province", "CT", Decimal("99"), provisional=True),  # best total, too few dossiers
        RankInput("C", "province", "CT", Decimal("80")),
        RankInput("D", "province", "CT", Decimal("80")),
        RankInput("E", "province", "CT", Decimal("70")),
    ]
    prev = [
        RankInput("A", "province", "CT", Decimal("50"), provisional=True),  # not ranked before: no delta
        RankInput("E", "province", "CT", Decimal("95")),
        RankInput("B", "province", "CT", Decimal("10")),
    ]
    r = rank(rows, prev)
    assert "B" not in r  # rank and rank_delta are null for it
    assert {c: x.rank for c, x in r.items()} == {"A": 1, "C": 2, "D": 2, "E": 4}  # no gap for B
    assert r["A"].rank_delta is None and r["E"].rank_delta == -3
