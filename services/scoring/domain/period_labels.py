"""Which periods (kỳ) an instant span touches: months, with their quarter and year.

Scoring keeps periods from ``HISTORY_MONTHS`` months before the running one: a dossier, rating
or petition dated earlier (a 1990 typo, a year-1 timestamp) touches no period before that floor,
so one event cannot make the refresher recompute hundreds of periods (a storm). Periods before
the floor keep the figures they were last computed with.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from shared.calendar import local_date, start_of_day

HISTORY_MONTHS = 24


@lru_cache(maxsize=256)  # judging asks once per dossier, with one ``now`` per chunk
def history_floor(now: datetime) -> datetime:
    """The start of the month ``HISTORY_MONTHS`` before the month of ``now`` (local time)."""
    d = local_date(now)
    index = d.year * 12 + d.month - 1 - HISTORY_MONTHS
    return start_of_day(d.replace(year=index // 12, month=index % 12 + 1, day=1))


def months_between(start: datetime, end: datetime, *, since: datetime | None = None) -> set[str]:
    """Labels of every month from ``start`` to ``end`` (local dates), plus their quarters and years.

    ``since``: only periods starting at or after it (quarters and years included); the
    start is clamped to it first, so a timestamp far in the past costs nothing.
    """
    return set(month_span(start, end, since=since))


def month_span(start: datetime, end: datetime, *, since: datetime | None = None) -> frozenset[str]:
    """:func:`months_between` as a shared frozenset (the labels depend only on the local months
    and the floor, so judging's few distinct spans are built once)."""
    if since is not None:
        if end < since:
            return frozenset()
        start = max(start, since)
    a, b = local_date(start), local_date(max(start, end))
    return _labels(a.year, a.month, b.year, b.month, None if since is None else local_date(since))


@lru_cache(maxsize=4096)
def _labels(y: int, m: int, last_y: int, last_m: int, floor: date | None) -> frozenset[str]:
    out: set[str] = set()
    while (y, m) <= (last_y, last_m):
        out |= {f"{y:04d}-{m:02d}", f"{y:04d}-Q{(m - 1) // 3 + 1}", f"{y:04d}"}
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    if floor is not None:
        out = {label for label in out if _first_day(label) >= floor}
    return frozenset(out)


def _first_day(label: str) -> date:
    """The first day of a month (``2026-10``), quarter (``2026-Q4``) or year (``2026``) label."""
    if "-Q" in label:
        y, q = label.split("-Q")
        return date(int(y), 3 * (int(q) - 1) + 1, 1)
    if "-" in label:
        y, m = label.split("-")
        return date(int(y), int(m), 1)
    return date(int(label), 1, 1)
