"""A memoising working calendar (lịch làm việc): the same answers, computed once per date pair.

Scoring a month asks the same few hundred (day, n) questions hundreds of thousands of times;
the day-by-day loops of :class:`~shared.calendar.WorkingCalendar` dominate otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from shared.calendar import WorkingCalendar, local_date


class CachedCalendar(WorkingCalendar):
    def __init__(
        self, extra_days_off: Iterable[date] = frozenset(), makeup_working_days: Iterable[date] = frozenset()
    ) -> None:
        super().__init__(extra_days_off, makeup_working_days)
        self._add: dict[tuple[date, int], date] = {}
        self._between: dict[tuple[date, date], int] = {}
        self._working: dict[date, bool] = {}
        self._due: dict[tuple[date, int], datetime] = {}

    def is_working_day(self, d: date) -> bool:
        hit = self._working.get(d)
        if hit is None:
            hit = self._working[d] = super().is_working_day(d)
        return hit

    def add_working_days(self, d: date, n: int) -> date:
        key = (d, n)
        hit = self._add.get(key)
        if hit is None:
            hit = self._add[key] = super().add_working_days(d, n)
        return hit

    def working_days_between(self, a: date, b: date) -> int:
        key = (a, b)
        hit = self._between.get(key)
        if hit is None:
            hit = self._between[key] = super().working_days_between(a, b)
        return hit

    def due_after(self, received_at: datetime, n: int) -> datetime:
        # The answer depends on the local day of receipt only (end_of_day builds an aware datetime:
        # ≈ 1 µs a dossier judged otherwise).
        key = (local_date(received_at), n)
        hit = self._due.get(key)
        if hit is None:
            hit = self._due[key] = super().due_after(received_at, n)
        return hit
