"""Reporting's copy of the admin-declared days (from scoring's ``CalendarChanged``) and the
working calendar built from them, for due times and the warning window.

A calendar change refolds every open dossier in one transaction; dossier batches and that
refold exclude each other through one advisory lock (batches share it, the refold takes it
alone), so no batch folds with a calendar that is being replaced.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.adapters.tables import calendar
from shared.calendar import WorkingCalendar

DeclaredDays = frozenset[tuple[date, str]]
_LOCK = "hashtext('reporting.calendar')"


async def hold_calendar(session: AsyncSession, *, exclusive: bool = False) -> None:
    """Until the end of the transaction: shared by dossier batches, exclusive for a calendar change."""
    kind = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(text(f"SELECT {kind}({_LOCK})"))


async def declared_days(session: AsyncSession) -> DeclaredDays:
    row = (await session.execute(select(calendar.c.days))).first()
    if row is None:
        return frozenset()
    return frozenset((date.fromisoformat(d["day"]), str(d["kind"])) for d in row.days)


@lru_cache(maxsize=8)
def working_calendar(days: DeclaredDays) -> WorkingCalendar:
    """One calendar per declared set (it caches the holiday years it has computed)."""
    return WorkingCalendar(
        extra_days_off=[d for d, k in days if k == "day_off"],
        makeup_working_days=[d for d, k in days if k == "working_day"],
    )
