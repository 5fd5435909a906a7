from datetime import date, datetime

import pytest

from shared.calendar import VN_TZ, WorkingCalendar, end_of_day, local_date

CAL = WorkingCalendar()


def test_weekdays_and_weekends() -> None:
    assert CAL.is_working_day(date(2026, 10, 5))  # Monday
    assert not CAL.is_working_day(date(2026, 10, 3))  # Saturday
    assert not CAL.is_working_day(date(2026, 10, 4))  # Sunday


def test_tet_2027_from_the_holidays_package() -> None:
    # The package gives Tết 2027 as 4–10 February (29th of the last lunar month to the 5th day).
    for day in range(4, 11):
        assert not CAL.is_working_day(date(2027, 2, day))
    assert CAL.is_working_day(date(2027, 2, 3))
    assert CAL.is_working_day(date(2027, 2, 11))
    # Wednesday 3 Feb + 1 working day jumps over the whole of Tết.
    assert CAL.add_working_days(date(2027, 2, 3), 1) == date(2027, 2, 11)


def test_package_makeup_saturday_and_substitute_day() -> None:
    assert CAL.is_working_day(date(2026, 8, 22))  # Saturday worked to bridge 31 August
    assert not CAL.is_working_day(date(2026, 8, 31))


def test_admin_declared_days() -> None:
    cal = WorkingCalendar(extra_days_off={date(2026, 10, 6)}, makeup_working_days={date(2026, 10, 10)})
    assert not cal.is_working_day(date(2026, 10, 6))
    assert cal.is_working_day(date(2026, 10, 10))
    assert cal.add_working_days(date(2026, 10, 5), 4) == date(2026, 10, 10)
    with pytest.raises(ValueError):
        WorkingCalendar(extra_days_off={date(2026, 1, 1)}, makeup_working_days={date(2026, 1, 1)})


def test_add_and_between_are_inverse() -> None:
    start = date(2026, 12, 20)
    for n in range(0, 40):
        end = CAL.add_working_days(start, n)
        assert CAL.working_days_between(start, end) == n
    assert CAL.working_days_between(date(2026, 10, 9), date(2026, 10, 5)) == 0
    assert CAL.add_working_days(date(2026, 10, 3), 0) == date(2026, 10, 3)


def test_due_after_is_next_local_midnight() -> None:
    received = datetime(2026, 10, 2, 16, 0, tzinfo=VN_TZ)  # Friday
    due = CAL.due_after(received, 3)
    assert due == end_of_day(date(2026, 10, 7)) == datetime(2026, 10, 8, tzinfo=VN_TZ)


def test_shift_due_keeps_time_of_day_and_end_of_day() -> None:
    assert CAL.shift_due(datetime(2026, 10, 8, tzinfo=VN_TZ), 2) == datetime(2026, 10, 10, tzinfo=VN_TZ)
    assert CAL.shift_due(datetime(2026, 10, 9, 17, 0, tzinfo=VN_TZ), 1) == datetime(2026, 10, 12, 17, 0, tzinfo=VN_TZ)


def test_local_date_uses_vietnam_time() -> None:
    from datetime import UTC

    assert local_date(datetime(2026, 10, 4, 18, 0, tzinfo=UTC)) == date(2026, 10, 5)
    with pytest.raises(ValueError):
        local_date(datetime(2026, 10, 4, 18, 0))


def test_working_days_late() -> None:
    due = datetime(2026, 10, 8, tzinfo=VN_TZ)  # end of Wed 7 Oct
    assert CAL.working_days_late(due, datetime(2026, 10, 7, 23, 0, tzinfo=VN_TZ)) == 0
    assert CAL.working_days_late(due, datetime(2026, 10, 8, 9, 0, tzinfo=VN_TZ)) == 1
    assert CAL.working_days_late(due, datetime(2026, 10, 12, 9, 0, tzinfo=VN_TZ)) == 3
