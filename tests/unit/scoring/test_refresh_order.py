"""The refresher recomputes the running month before its quarter and year."""

from __future__ import annotations

from services.scoring.application.refresher import refresh_order


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
