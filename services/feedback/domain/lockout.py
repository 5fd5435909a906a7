"""Rating-code lockout (khóa đánh giá): wrong codes for one dossier id lock its rating.

The lock is keyed by the dossier id as typed, whether or not such a dossier exists, so a
lock says nothing about existence; while locked even the right code is refused, otherwise
guessing would simply continue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_FAILURES = 5
LOCK_FOR = timedelta(hours=1)
# Wrong codes older than this no longer count towards a lock (a typo last week is forgiven).
FAILURE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class LockState:
    failures: int = 0
    first_failure_at: datetime | None = None
    locked_until: datetime | None = None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def after_failure(
    state: LockState,
    now: datetime,
    *,
    max_failures: int = MAX_FAILURES,
    lock_for: timedelta = LOCK_FOR,
    window: timedelta = FAILURE_WINDOW,
) -> LockState:
    """Count one wrong code; the ``max_failures``-th within the window locks for ``lock_for``."""
    if state.is_locked(now):
        return state
    fresh = state.first_failure_at is None or now - state.first_failure_at > window
    failures = 1 if fresh else state.failures + 1
    first = now if fresh else state.first_failure_at
    if failures >= max_failures:
        return LockState(failures=0, first_failure_at=None, locked_until=now + lock_for)
    return LockState(failures=failures, first_failure_at=first, locked_until=None)


def after_success(state: LockState) -> LockState:
    return LockState()
