"""Rating-code lockout: five wrong codes for one dossier id lock it for an hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.feedback.domain.lockout import LockState, after_failure, after_success

T0 = datetime(2026, 10, 5, 3, tzinfo=UTC)


def test_fifth_wrong_code_locks_for_an_hour() -> None:
    s = LockState()
    for i in range(4):
        s = after_failure(s, T0 + timedelta(minutes=i))
        assert not s.is_locked(T0 + timedelta(minutes=i))
    s = after_failure(s, T0 + timedelta(minutes=4))
    assert s.is_locked(T0 + timedelta(minutes=5))
    assert s.is_locked(T0 + timedelta(minutes=63))
    assert not s.is_locked(T0 + timedelta(minutes=64, seconds=1))


def test_failures_while_locked_do_not_extend_it() -> None:
    s = LockState(locked_until=T0 + timedelta(hours=1))
    assert after_failure(s, T0 + timedelta(minutes=30)) == s


def test_old_failures_are_forgiven_after_the_window() -> None:
    s = LockState()
    for i in range(4):
        s = after_failure(s, T0 + timedelta(minutes=i))
    s = after_failure(s, T0 + timedelta(hours=2))
    assert s.failures == 1 and not s.is_locked(T0 + timedelta(hours=2))


def test_after_the_lock_expires_counting_starts_again() -> None:
    s = LockState(locked_until=T0)
    s = after_failure(s, T0 + timedelta(seconds=1))
    assert s.failures == 1 and not s.is_locked(T0 + timedelta(seconds=2))


def test_success_resets() -> None:
    assert after_success(LockState(failures=3, first_failure_at=T0)) == LockState()
