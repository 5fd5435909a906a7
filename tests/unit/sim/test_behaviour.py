"""Seasonality rules (mùa kê khai, Tết) as plain functions."""

from __future__ import annotations

from datetime import date

from sim import behaviour as bh


def test_tet_is_quiet() -> None:
    assert bh.tet_factor(date(2026, 2, 12)) < 1  # the week before Tết Bính Ngọ (17 February 2026)
    assert bh.tet_factor(date(2026, 2, 24)) < 1  # and the week after
    assert bh.tet_factor(date(2026, 3, 16)) == 1


def test_declaration_and_finalisation_seasons() -> None:
    assert bh.procedure_factor("T.KT.01", date(2026, 6, 18)) > 2 * bh.procedure_factor("T.KT.01", date(2026, 6, 8))
    # Quarterly declarations: end of the month after the quarter.
    assert bh.procedure_factor("T.KT.01", date(2026, 7, 28)) > bh.procedure_factor("T.KT.01", date(2026, 6, 28))
    assert bh.procedure_factor("T.KT.02", date(2026, 3, 20)) > 5 * bh.procedure_factor("T.KT.02", date(2026, 8, 20))


def test_mondays_busier_than_fridays() -> None:
    assert bh.weekday_factor(date(2026, 11, 23)) > bh.weekday_factor(date(2026, 11, 27))
