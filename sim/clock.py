"""Fast local time for the generator: integer seconds in Vietnam local time.

``t`` counts seconds since 1970-01-01 00:00 *Vietnam local time* (UTC+7, no daylight saving),
so ``t // 86400`` is the local day and formatting needs no time-zone arithmetic. Working days
come from :class:`shared.calendar.WorkingCalendar`, cached per day index because the generator
asks millions of times.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from shared.calendar import VN_TZ, WorkingCalendar

DAY = 86400
OFFSET = 7 * 3600
_EPOCH = date(1970, 1, 1)


def day_of(d: date) -> int:
    return (d - _EPOCH).days


def date_of(day: int) -> date:
    return _EPOCH + timedelta(days=day)


def t_of(dt: datetime) -> int:
    """Local seconds of an aware datetime (naive ones are read as Vietnam time)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=VN_TZ)
    return int(dt.timestamp()) + OFFSET


def month_of(day: int) -> str:
    d = date_of(day)
    return f"{d.year:04d}-{d.month:02d}"


@lru_cache(maxsize=1)
def _hms() -> list[str]:
    """Every "HH:MM:SS+07:00" of a day, built once: formatting is the generator's hot path."""
    return [f"{h:02d}:{m:02d}:{s:02d}+07:00" for h in range(24) for m in range(60) for s in range(60)]


class Clock:
    """Working-day arithmetic and RFC 3339 formatting on day indices."""

    def __init__(self, calendar: WorkingCalendar | None = None) -> None:
        self.cal = calendar or WorkingCalendar()
        self._wd: dict[int, bool] = {}
        self._add: dict[tuple[int, int], int] = {}
        self._prefix: dict[int, str] = {}

    def is_wd(self, day: int) -> bool:
        v = self._wd.get(day)
        if v is None:
            v = self._wd[day] = self.cal.is_working_day(date_of(day))
        return v

    def add_wd(self, day: int, n: int) -> int:
        """The n-th working day after ``day`` (same rule as WorkingCalendar.add_working_days)."""
        key = (day, n)
        v = self._add.get(key)
        if v is None:
            cur, left = day, n
            while left > 0:
                cur += 1
                if self.is_wd(cur):
                    left -= 1
            v = self._add[key] = cur
        return v

    def wd_between(self, a: int, b: int) -> int:
        """Working days d with a < d <= b."""
        return sum(1 for d in range(a + 1, b + 1) if self.is_wd(d))

    def fmt(self, t: int) -> str:
        day, s = divmod(t, DAY)
        p = self._prefix.get(day)
        if p is None:
            p = self._prefix[day] = date_of(day).isoformat() + "T"
        return p + _hms()[s]

    def fmt_date(self, day: int) -> str:
        return date_of(day).isoformat()
