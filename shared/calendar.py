"""The working-day calendar (ngày làm việc) of the tax administration.

A working day is Monday to Friday, minus Vietnam's public holidays as the ``holidays`` package
knows them (lunar Tết included, with the package's own substitute days), plus the Saturdays the
package records as make-up working days (``weekend_workdays``), then corrected by what an admin
declares: extra days off (ngày nghỉ bù / nghỉ thêm) and make-up working days (ngày làm bù). Admin
declarations win over the package; a date cannot be declared both.

All local times are Vietnam time (Asia/Ho_Chi_Minh, UTC+7, no daylight saving).

Due-time convention (ngày hẹn trả), used by scoring and by the feedback service alike:

* A due time that SQI computes is the END of the n-th working day after the local day of
  receipt, represented as the next local midnight (``end_of_day(d)`` = ``d + 1 day, 00:00``).
* One comparison everywhere: something is on time iff ``finished_at <= due_at``. For a computed
  due time, finishing at 23:59:59 of the due day is on time; the single instant 00:00:00 of the
  next day equals "24:00 of the due day" and is also on time. An explicit ``due_at`` from an
  event is used as given, and "finished on or before due_at" is on time: the same rule.
* Moving a due time by n working days (a paused clock) keeps its local time of day; a due time at
  local midnight is read as the end of the previous day, so a computed due time moves by whole
  working days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_MIDNIGHT = time(0, 0)


@lru_cache(maxsize=8192)
def local_date(at: datetime) -> date:
    """The Vietnam-local calendar date of an aware datetime (memoised: judging asks it several
    times per dossier for its receipt, its end and the judging instant; a hit costs ≈ a sixth
    of the conversion)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: SQI only handles aware datetimes")
    return at.astimezone(VN_TZ).date()


def start_of_day(d: date) -> datetime:
    """Local midnight at the start of ``d`` (aware, Asia/Ho_Chi_Minh)."""
    return datetime.combine(d, _MIDNIGHT, tzinfo=VN_TZ)


def end_of_day(d: date) -> datetime:
    """The end of local day ``d``, represented as the next local midnight (see module docstring)."""
    return start_of_day(d + timedelta(days=1))


class WorkingCalendar:
    """Working days in Vietnam for the tax administration (lịch ngày làm việc)."""

    def __init__(
        self,
        extra_days_off: Iterable[date] = frozenset(),
        makeup_working_days: Iterable[date] = frozenset(),
    ) -> None:
        self._extra_off = frozenset(extra_days_off)
        self._makeup = frozenset(makeup_working_days)
        both = self._extra_off & self._makeup
        if both:
            raise ValueError(f"dates declared both day off and working day: {sorted(both)}")
        # Holiday years are loaded lazily and cached per calendar: the package computes lunar
        # dates, which is slow enough to matter when folding millions of dossiers.
        self._years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}

    def _year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        cached = self._years.get(year)
        if cached is None:
            vn = holidays.country_holidays("VN", years=year)
            days_off = frozenset(d for d in vn if d.year == year)
            workdays = frozenset(d for d in getattr(vn, "weekend_workdays", ()) if d.year == year)
            cached = (days_off, workdays)
            self._years[year] = cached
        return cached

    def is_holiday(self, d: date) -> bool:
        """A public holiday (ngày lễ, Tết) per the package, or an admin-declared day off."""
        return d in self._extra_off or (d not in self._makeup and d in self._year(d.year)[0])

    def is_working_day(self, d: date) -> bool:
        """True for a day on which tax offices work."""
        if d in self._extra_off:
            return False
        if d in self._makeup:
            return True
        days_off, workdays = self._year(d.year)
        if d in days_off:
            return False
        return d.weekday() < 5 or d in workdays

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after ``d`` (``d`` itself for n = 0, working or not)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        current = d
        remaining = n
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def working_days_between(self, a: date, b: date) -> int:
        """Number of working days ``d`` with ``a < d <= b`` (0 when ``b <= a``)."""
        count = 0
        current = a
        while current < b:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count

    def due_after(self, received_at: datetime, n: int) -> datetime:
        """SQI's due time: the end of the n-th working day after the local day of ``received_at``."""
        return end_of_day(self.add_working_days(local_date(received_at), n))

    def shift_due(self, due_at: datetime, n: int) -> datetime:
        """Move a due time later by n working days (a paused clock), keeping its time of day."""
        if n <= 0:
            return due_at
        local = due_at.astimezone(VN_TZ)
        if local.time() == _MIDNIGHT:
            # 00:00 is the end of the previous day (our own representation of "end of day").
            return end_of_day(self.add_working_days(local.date() - timedelta(days=1), n))
        moved = self.add_working_days(local.date(), n)
        return datetime.combine(moved, local.timetz())

    def working_days_late(self, due_at: datetime, at: datetime) -> int:
        """How many working days ``at`` lies after ``due_at`` (0 if not after); at least 1 if late."""
        if at <= due_at:
            return 0
        local_due = due_at.astimezone(VN_TZ)
        due_day = local_due.date() - timedelta(days=1) if local_due.time() == _MIDNIGHT else local_due.date()
        return max(1, self.working_days_between(due_day, local_date(at)))
