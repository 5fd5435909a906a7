"""Warnings (cảnh báo): what a head of office should act on today.

- ``due_soon``: not finished, not waiting for the applicant, due within N working days;
- ``overdue``: not finished and past its due time;
- ``score_drop`` / ``grade_change``: announced by scoring in the last days;
- ``feed_silent``: a source that reports for the unit has sent nothing for much longer than usual.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from services.reporting.domain.briefing import WarningItem
from services.reporting.domain.ranking import grade_name
from shared.calendar import VN_TZ, WorkingCalendar, end_of_day, local_date

KINDS = ("overdue", "due_soon", "score_drop", "grade_change", "feed_silent")


def due_window_end(now: datetime, working_days: int, calendar: WorkingCalendar) -> datetime:
    """The end of the N-th working day after today: due before it means "due soon"."""
    return end_of_day(calendar.add_working_days(local_date(now), working_days))


def _local(at: datetime) -> str:
    return at.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")


def dossier_warning(
    *, dossier_id: str, unit_code: str, officer_id: str | None, due_at: datetime, now: datetime
) -> WarningItem:
    if due_at <= now:
        detail = f"Hồ sơ quá hạn từ {_local(due_at)} / overdue since {_local(due_at)}"
        kind = "overdue"
    else:
        detail = f"Hồ sơ sắp đến hạn {_local(due_at)} / due at {_local(due_at)}"
        kind = "due_soon"
    return WarningItem(
        kind=kind, unit_code=unit_code, dossier_id=dossier_id, officer_id=officer_id, due_at=due_at, detail=detail
    )


def alert_warning(*, kind: str, unit_code: str, period: str, previous: str, current: str) -> WarningItem:
    if kind == "score_drop":
        drop = Decimal(previous) - Decimal(current)
        detail = (
            f"Điểm kỳ {period} giảm {drop} điểm ({previous} → {current}) / "
            f"score for {period} fell by {drop} points ({previous} → {current})"
        )
    else:
        detail = (
            f"Xếp loại kỳ {period}: {grade_name(previous, 'vi')} → {grade_name(current, 'vi')} / "
            f"grade for {period}: {grade_name(previous, 'en')} → {grade_name(current, 'en')}"
        )
    return WarningItem(kind=kind, unit_code=unit_code, detail=detail)


def silence_limit(usual_gap_s: float | None, *, factor: float, min_s: int, default_s: int) -> timedelta:
    """How long a feed may stay quiet before it is called silent."""
    if usual_gap_s is None:
        return timedelta(seconds=default_s)
    return timedelta(seconds=max(min_s, factor * usual_gap_s))


def feed_warning(*, source: str, unit_code: str, last_accepted_at: datetime, now: datetime) -> WarningItem:
    quiet = now - last_accepted_at
    hours = round(quiet.total_seconds() / 3600, 1)
    detail = (
        f"Nguồn {source} chưa gửi dữ liệu từ {_local(last_accepted_at)} ({hours} giờ) / "
        f"feed {source} silent since {_local(last_accepted_at)} ({hours} h)"
    )
    return WarningItem(kind="feed_silent", unit_code=unit_code, detail=detail)
