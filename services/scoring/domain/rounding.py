"""Rounding and points exactly as the national portal computes them (methodology.md).

Points are returned as :class:`~decimal.Decimal` with two places, so sums of points are exact and
the published figure is the stored figure. The floating-point steps are deliberately kept in IEEE
double, in the order the methodology writes them, because that is what reproduces the portal's
published numbers (e.g. 6 × 98.75 / 100 is the double 5.92499…, hence 5.92, not 5.93).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def r2(x: float | Decimal | int) -> Decimal:
    """Round half-up to 2 decimals on the exact value of ``x`` (for a float: the double's value)."""
    return Decimal(x).quantize(CENT, rounding=ROUND_HALF_UP)


def percent(numerator: float, denominator: int | float) -> float:
    """``P = 100 × n / d`` in double, in that order."""
    return 100 * numerator / denominator


def ratio_shown(numerator: float, denominator: int | float) -> Decimal | None:
    """The ratio displayed beside an indicator: ``r2(100 × n / d)``; None for d = 0."""
    if denominator == 0:
        return None
    return r2(percent(numerator, denominator))


def points_for(
    numerator: float,
    denominator: int | float,
    max_points: float | Decimal,
    threshold: float = 100.0,
    rounds_ratio_first: bool = False,
) -> Decimal:
    """``r2(min(M, M × P / T))`` with ``P = 100 × n / d`` (rounded first for 4.4–4.6).

    The caller handles d = 0 (zero rule); here d must be positive.
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive; apply the zero rule first")
    m = float(max_points)
    p: float = percent(numerator, denominator)
    if rounds_ratio_first:
        p = float(r2(p))
    return r2(min(m, m * p / threshold))
