from decimal import Decimal

import pytest

from services.scoring.domain.rounding import points_for, r2, ratio_shown


def test_half_up_not_bankers() -> None:
    # 29/32 on 20 points: P = 90.625, 20 × P / 100 = 18.125 exactly → 18.13 (banker's gives 18.12).
    assert points_for(29, 32, 20) == Decimal("18.13")
    assert r2(0.125) == Decimal("0.13")
    assert r2(Decimal("2.345")) == Decimal("2.35")


def test_rounds_the_double_not_the_written_decimal() -> None:
    # 6 × 98.75 / 100 is the double 5.92499…, so 5.92.
    assert Decimal(6 * 98.75 / 100) < Decimal("5.925")
    assert points_for(98.75, 100, 6) == Decimal("5.92")
    assert r2(1.005) == Decimal("1.00")  # 1.005 is 1.00499999… as a double
    assert r2(2.675) == Decimal("2.67")


def test_threshold_caps_at_max() -> None:
    assert points_for(40, 100, 2, threshold=80) == Decimal("1.00")
    assert points_for(80, 100, 2, threshold=80) == Decimal("2.00")
    assert points_for(99, 100, 2, threshold=80) == Decimal("2.00")
    assert points_for(1, 4, 6, threshold=50) == Decimal("3.00")


def test_ratio_rounded_first_for_payment_indicators() -> None:
    # n/d = 2/3: P = 66.666… unrounded gives 2 × 66.666…/80 = 1.6666… → 1.67;
    # rounded first: P = 66.67 → 2 × 66.67 / 80 = 1.66675 (double 1.6667499…) → 1.67.
    assert points_for(2, 3, 2, threshold=80, rounds_ratio_first=True) == Decimal("1.67")
    # 1/7 on 6: P = 14.285714… → 0.857142… = 0.86; rounded first P = 14.29 → 0.8574 → 0.86.
    assert points_for(1, 7, 6, rounds_ratio_first=True) == Decimal("0.86")
    # 1/3 on 6: unrounded 6 × 33.333…/100 → 2.00; rounded first 6 × 33.33 / 100 = 1.9998 → 2.00.
    assert points_for(1, 3, 6) == points_for(1, 3, 6, rounds_ratio_first=True) == Decimal("2.00")


def test_ratio_shown_and_zero_denominator() -> None:
    assert ratio_shown(29, 32) == Decimal("90.63")
    assert ratio_shown(0, 0) is None
    with pytest.raises(ValueError):
        points_for(0, 0, 6)
