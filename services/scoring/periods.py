"""Which periods (kỳ) an instant span touches: months, with their quarter and year."""

from __future__ import annotations

from datetime import datetime

from shared.calendar import local_date


def months_between(start: datetime, end: datetime) -> set[str]:
    """Labels of every month from ``start`` to ``end`` (local dates), plus their quarters and years."""
    a, b = local_date(start), local_date(max(start, end))
    out: set[str] = set()
    y, m = a.year, a.month
    while (y, m) <= (b.year, b.month):
        out |= {f"{y:04d}-{m:02d}", f"{y:04d}-Q{(m - 1) // 3 + 1}", f"{y:04d}"}
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
