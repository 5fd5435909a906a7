"""Admin-declared days (scoring's CalendarChanged) move the due times of open dossiers; a late,
older set is ignored; later batches fold with the declared days."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.reporting.adapters.changes import current_versions
from services.reporting.adapters.tables import calendar, dossier
from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_calendar_changed, on_dossier_events
from shared.calendar import VN_TZ
from tests.integration.reporting.conftest import message
from tests.integration.reporting.test_read_model import apply, dossier_batch

pytestmark = pytest.mark.integration

MONDAY = datetime(2026, 10, 5, 9, 0, tzinfo=VN_TZ)
THURSDAY_END = datetime(2026, 10, 9, 0, 0, tzinfo=VN_TZ)  # T.DKT.01: 3 working days
FRIDAY_END = datetime(2026, 10, 10, 0, 0, tzinfo=VN_TZ)


def calendar_message(days: list[tuple[date, str]], changed_at: datetime) -> Any:
    body = {"days": [{"day": d.isoformat(), "kind": k} for d, k in days], "changed_at": changed_at.isoformat()}
    return message("scoring.calendar-changed.v1", body)


async def received(reporting: Reporting, *, finished: bool = False) -> str:
    d = f"HS-CAL-{uuid.uuid4().hex[:8]}"
    events = [
        {
            "type": "dossier.received",
            "at": MONDAY.isoformat(),
            "data": {"dossier_id": d, "unit_code": "P14", "procedure_code": "T.DKT.01", "officer_id": "cb-1"},
        }
    ]
    if finished:
        at = (MONDAY + timedelta(hours=5)).isoformat()
        events.append({"type": "dossier.completed", "at": at, "data": {"dossier_id": d}})
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch(events)))
    return d


async def due(reporting: Reporting, dossier_id: str) -> datetime:
    async with reporting.sessions() as session:
        return (await session.execute(select(dossier.c.due_at).where(dossier.c.dossier_id == dossier_id))).scalar_one()


@pytest.fixture
async def declared(reporting: Reporting) -> AsyncIterator[None]:
    yield
    # Leave no declared day behind for the other tests of the session: the empty set, announced
    # later than anything a test announced.
    await apply(reporting, on_calendar_changed, calendar_message([], await later_than_held(reporting)))


async def later_than_held(reporting: Reporting) -> datetime:
    """An announcement instant later than the held set's (a day ahead of the clock at least)."""
    async with reporting.sessions() as session:
        held = (await session.execute(select(calendar.c.changed_at))).scalar_one_or_none()
    return max(datetime.now(UTC) + timedelta(days=1), (held or datetime.min.replace(tzinfo=UTC)) + timedelta(seconds=1))


async def test_a_declared_day_off_moves_open_due_times_and_is_withdrawn(reporting: Reporting, declared: None) -> None:
    open_one = await received(reporting)
    done = await received(reporting, finished=True)
    assert await due(reporting, open_one) == THURSDAY_END
    async with reporting.sessions() as session:
        before = await current_versions(session)
    t = await later_than_held(reporting)
    await apply(reporting, on_calendar_changed, calendar_message([(date(2026, 10, 7), "day_off")], t))
    assert await due(reporting, open_one) == FRIDAY_END  # Wednesday is no working day any more
    assert await due(reporting, done) == THURSDAY_END  # finished: left as it was
    async with reporting.sessions() as session:
        assert (await current_versions(session))["warnings"] > before["warnings"]
    # A dossier received after the declaration folds with it too.
    later = await received(reporting)
    assert await due(reporting, later) == FRIDAY_END
    # An older set delivered late changes nothing.
    await apply(reporting, on_calendar_changed, calendar_message([], t - timedelta(minutes=1)))
    assert await due(reporting, open_one) == FRIDAY_END
    # Withdrawn (the empty set, later): back to Thursday.
    await apply(reporting, on_calendar_changed, calendar_message([], t + timedelta(seconds=1)))
    assert await due(reporting, open_one) == THURSDAY_END and await due(reporting, later) == THURSDAY_END


async def test_the_same_set_announced_again_refolds_nothing(reporting: Reporting, declared: None) -> None:
    """Scoring announces its declared set at every start: an unchanged set is kept, not refolded."""
    open_one = await received(reporting)
    t = await later_than_held(reporting)
    day_off = [(date(2026, 10, 7), "day_off")]
    await apply(reporting, on_calendar_changed, calendar_message(day_off, t))
    assert await due(reporting, open_one) == FRIDAY_END
    async with reporting.sessions() as session:
        before = await current_versions(session)
    await apply(reporting, on_calendar_changed, calendar_message(day_off, t + timedelta(seconds=1)))
    async with reporting.sessions() as session:
        assert (await current_versions(session))["warnings"] == before["warnings"]  # nothing refolded
        assert (await session.execute(select(calendar.c.changed_at))).scalar_one() == t + timedelta(seconds=1)
    assert await due(reporting, open_one) == FRIDAY_END
