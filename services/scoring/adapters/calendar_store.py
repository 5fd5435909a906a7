"""Admin-declared days (ngày nghỉ bổ sung, ngày làm bù) and the working calendar built from them.

The worker and the API build their :class:`~services.scoring.calendar_cache.CachedCalendar` from
``scoring.calendar_day`` and rebuild it when the declared set changes (``caches.sync_calendar``, a
read of a small table, once per judging step or when the API hears of a change). A change
re-judges everything it can affect: every dossier flagged for judging (``REJUDGE``: from its
stored facts, its events unchanged) and every scored period marked dirty
(:func:`rejudge_everything`). The transaction declaring a day does it; a judging step's opening
does it again when the declared days were written by a transaction that an earlier step's
snapshot could not see (``calendar_written``, set by triggers: adapters.judging_steps), so a step
that judged with the previous calendar while the declaration committed is re-judged, whether its
worker lives on or not.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import holidays
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.dirty_periods import mark_scored_periods
from services.scoring.adapters.dossier_flags import rejudge_all
from services.scoring.adapters.period_state import announce_reference_change
from services.scoring.adapters.tables import calendar_day
from services.scoring.domain.calendar_cache import CachedCalendar
from shared.calendar import WorkingCalendar
from shared.contracts.scoring import CalendarChanged, DeclaredDay
from shared.db import driver_connection
from shared.unit_of_work import UnitOfWork

DAY_OFF = "day_off"
WORKING_DAY = "working_day"
KINDS = (DAY_OFF, WORKING_DAY)


def holiday_names(year: int) -> dict[date, str]:
    """The holidays package's names of the year's Vietnamese holidays (for display)."""
    return {d: str(n) for d, n in holidays.country_holidays("VN", years=year).items() if d.year == year}


def build_calendar(days: frozenset[tuple[date, str]]) -> CachedCalendar:
    return CachedCalendar(
        extra_days_off=[d for d, k in days if k == DAY_OFF],
        makeup_working_days=[d for d, k in days if k == WORKING_DAY],
    )


async def declared_days(session: AsyncSession) -> frozenset[tuple[date, str]]:
    rows = await session.execute(select(calendar_day.c.day, calendar_day.c.kind))
    return frozenset((r.day, r.kind) for r in rows)


async def rejudge_everything(session: AsyncSession) -> None:
    """Flag every dossier for judging at the next refresh and mark every scored period dirty."""
    await rejudge_all(await driver_connection(session))
    await mark_scored_periods(session)


async def _serialise_changes(session: AsyncSession) -> None:
    """One calendar change at a time: each announced set then includes every earlier change."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('scoring.calendar_day'))"))


async def _announce(uow: UnitOfWork) -> None:
    """The whole declared set, through the outbox of the transaction that changed it."""
    days = sorted(await declared_days(uow.session))
    # clock_timestamp, not now(): taken after the lock, so it orders the serialised changes.
    changed_at = (await uow.session.execute(select(func.clock_timestamp()))).scalar_one()
    uow.publish(CalendarChanged(days=[DeclaredDay(day=d, kind=k) for d, k in days], changed_at=changed_at))  # type: ignore[arg-type]


async def _declared_set_changed(uow: UnitOfWork) -> None:
    """What a change of the declared days entails, in its transaction: every dossier judged again,
    the new set announced to the other services, and the API processes told to rebuild their
    calendars once it commits."""
    await rejudge_everything(uow.session)
    await _announce(uow)
    announce_reference_change(uow.session)


async def announce_declared_days(uow: UnitOfWork) -> None:
    """Announce the declared set as it stands (the worker does at start): a consumer whose queue
    was created after the last change has not heard of it. Serialised with the changes, so a
    change committing meanwhile is announced after this one, with a later ``changed_at``."""
    await _serialise_changes(uow.session)
    await _announce(uow)


async def declare_day(
    uow: UnitOfWork, day: date, kind: str, note: str | None, *, declared_by: str, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Upsert a declared day; returns the row and whether it is new. Re-judges and announces
    the declared set (``CalendarChanged``) when it changed."""
    session = uow.session
    await _serialise_changes(session)
    previous = (
        await session.execute(select(calendar_day.c.kind).where(calendar_day.c.day == day).with_for_update())
    ).scalar_one_or_none()
    stmt = insert(calendar_day).values(day=day, kind=kind, note=note, declared_by=declared_by, declared_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day"],
        set_={"kind": kind, "note": note, "declared_by": declared_by, "declared_at": now},
    )
    await session.execute(stmt)
    if previous != kind:
        await _declared_set_changed(uow)
    return {"day": day, "kind": kind, "note": note, "declared_by": declared_by, "declared_at": now}, previous is None


async def undeclare_day(uow: UnitOfWork, day: date) -> bool:
    session = uow.session
    await _serialise_changes(session)
    gone = await session.execute(delete(calendar_day).where(calendar_day.c.day == day).returning(calendar_day.c.day))
    if gone.first() is None:
        return False
    await _declared_set_changed(uow)
    return True


async def year_calendar(session: AsyncSession, calendar: WorkingCalendar, year: int) -> dict[str, Any]:
    """The year's non-working weekdays (holidays and declared days off), its working weekend days,
    and the declared days as declared."""
    rows = await session.execute(
        select(calendar_day)
        .where(calendar_day.c.day >= date(year, 1, 1), calendar_day.c.day <= date(year, 12, 31))
        .order_by(calendar_day.c.day)
    )
    declared = [
        {
            "day": r.day.isoformat(),
            "kind": r.kind,
            "note": r.note,
            "declared_by": r.declared_by,
            "declared_at": r.declared_at.isoformat(),
        }
        for r in rows
    ]
    by_day = {d["day"]: d for d in declared}
    names = holiday_names(year)
    days_off: list[dict[str, Any]] = []
    working_weekend: list[dict[str, Any]] = []
    d = date(year, 1, 1)
    while d.year == year:
        working = calendar.is_working_day(d)
        iso = d.isoformat()
        dec = by_day.get(iso)
        if d.weekday() < 5 and not working:
            source = "declared" if dec and dec["kind"] == DAY_OFF else "holiday"
            days_off.append({"day": iso, "source": source, "name": dec["note"] if dec else names.get(d)})
        elif d.weekday() >= 5 and working:
            source = "declared" if dec and dec["kind"] == WORKING_DAY else "holiday"
            working_weekend.append({"day": iso, "source": source, "name": dec["note"] if dec else names.get(d)})
        d += timedelta(days=1)
    return {"year": year, "days_off": days_off, "working_weekend_days": working_weekend, "declared": declared}
