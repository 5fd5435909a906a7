"""The refresher recomputes the running month before its quarter and year, and paces its ticks."""

from __future__ import annotations

import pytest

from services.scoring.application.refresher import next_tick_in, refresh_order


def test_months_newest_first_then_quarters_then_years() -> None:
    labels = ["2026", "2026-Q4", "2025-12", "2026-11", "2025", "2026-10", "2025-Q4", "not-a-period"]
    assert refresh_order(labels) == [
        "2026-11",
        "2026-10",
        "2025-12",
        "2026-Q4",
        "2025-Q4",
        "2026",
        "2025",
        "not-a-period",
    ]


def test_ticks_begin_a_period_apart_and_a_long_tick_is_followed_at_once() -> None:
    # A short tick waits out the rest of the period; one longer than the period adds no pause.
    assert next_tick_in(0.25, began=10.0, now=10.05) == pytest.approx(0.20)
    assert next_tick_in(0.25, began=10.0, now=10.25) == 0.0
    assert next_tick_in(0.25, began=10.0, now=12.0) == 0.0
