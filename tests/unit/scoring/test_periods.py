"""Periods a request may name, and the periods a far-past timestamp may touch."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.scoring.domain import parse_period
from services.scoring.domain.period_labels import history_floor, months_between
from shared.calendar import VN_TZ


@pytest.mark.parametrize(
    "text", ["9999", "0001-01", "0001-01-01..0001-01-02", "1999-Q4", "2101", "2024-01-01..2025-01-02", "2026-13"]
)
def test_out_of_bounds_periods_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


@pytest.mark.parametrize("text", ["2000-01", "2100", "2024-01-01..2024-12-31", "2026-Q4", "2026-10-01..2026-10-15"])
def test_sane_periods_parse(text: str) -> None:
    assert parse_period(text).label == text


def test_history_floor_bounds_the_periods_touched() -> None:
    now = datetime(2026, 11, 5, 9, tzinfo=VN_TZ)
    floor = history_floor(now)
    assert floor == datetime(2024, 11, 1, tzinfo=VN_TZ)
    labels = months_between(datetime(1990, 1, 5, tzinfo=VN_TZ), now, since=floor)
    assert min(labels) == "2024-11" and "2024-Q4" not in labels and "2024" not in labels
    assert {"2025", "2025-Q1", "2026-11", "2026-Q4", "2026"} <= labels and len(labels) == 35
    assert months_between(datetime(1, 1, 1, tzinfo=VN_TZ), datetime(1, 1, 2, tzinfo=VN_TZ), since=floor) == set()
    assert months_between(datetime(2026, 10, 5, tzinfo=VN_TZ), now) == {"2026-10", "2026-11", "2026-Q4", "2026"}
