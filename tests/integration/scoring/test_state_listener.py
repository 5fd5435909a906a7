"""The scoring API hears each committed computation (``period_state.CHANNEL``) and reads that
period's state again at once, instead of serving the state it holds until its window ends; and
it hears each change of the unit tree, the catalogue, the methodologies and the calendar, and
reloads its copies of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.scoring.adapters.calendar_store import DAY_OFF, declare_day
from services.scoring.adapters.period_state import CHANNEL
from services.scoring.adapters.repository import load_procedures, load_units
from services.scoring.api.app import change_listener
from services.scoring.api.read_cache import StateReader
from services.scoring.api.routes import get_app
from services.scoring.application.refresher import refresh_once
from services.scoring.application.table_copy import Reloads, TableCopy
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_units, mark_dirty
from shared.background import cancel_and_wait
from shared.contracts import UnitRecord, UnitsChanged
from shared.listener import Listener

from .helpers import apply_batches, load_reference
from .scenario import NOW, dossier_events

pytestmark = pytest.mark.integration


@asynccontextmanager
async def running(listener: Listener) -> AsyncIterator[float]:
    """Run ``listener`` for the block, entered once it is connected; yields the test's deadline."""
    listening = asyncio.create_task(listener.run())
    try:
        deadline = time.monotonic() + 30
        while not listener.connected:
            assert time.monotonic() < deadline, "the listener never connected"
            await asyncio.sleep(0.02)
        yield deadline
    finally:
        await cancel_and_wait(listening)


async def test_a_committed_refresh_is_read_again_at_once(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    await apply_batches(app, [dossier_events()], NOW)
    await refresh_once(app, now=NOW)
    # A window of an hour: only the notification can make the reader read the state again.
    reader = StateReader(app.engine, seconds=3600, stale_seconds=3600)
    async with running(Listener(app.settings.listen_dsn, CHANNEL, reader.heard)) as deadline:
        first = await reader.get("2026-10", "tax-2025")
        assert first is not None and first.computed_at == NOW

        later = NOW + timedelta(seconds=5)
        async with app.uow() as uow:
            await mark_dirty(uow, ["2026-10"])
        assert "2026-10" in await refresh_once(app, now=later)
        while (state := await reader.get("2026-10", "tax-2025")) is None or state.computed_at != later:
            assert time.monotonic() < deadline, "the committed refresh was never heard"
            await asyncio.sleep(0.02)
        # A period nobody reads here is not read because it was heard.
        assert ("2026-Q4", "tax-2025") not in reader._latest


async def test_changes_of_the_unit_tree_and_the_calendar_reach_the_api_copies_at_once(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    # Copies that a clock would reload only after an hour: only what is heard can reload them.
    app.units = TableCopy(load_units, seconds=3600, heard_seconds=3600)
    app.procedures = TableCopy(load_procedures, seconds=3600, heard_seconds=3600)
    app.synced = Reloads("methodologies and calendar", seconds=3600, heard_seconds=3600)
    request: Any = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(scoring=app)))
    async with running(change_listener(app, StateReader(app.engine))) as deadline:
        async with app.sessions() as session:
            assert "Thuế Thành phố Huế" in {u.name for u in await app.units.get(session, app.sessions)}
        assert not app.units.reloads.running  # loaded inline after the connection: nothing else is due

        renamed = UnitsChanged(
            units=[UnitRecord(code="P02", name="Thuế Thành phố Huế (mới)", level="province", parent_code="CT")]
        )
        async with app.uow() as uow:
            await apply_units(renamed, uow, now=NOW)
        while True:
            async with app.sessions() as session:
                names = {u.code: u.name for u in await app.units.get(session, app.sessions)}
            if names["P02"] == "Thuế Thành phố Huế (mới)":
                break
            assert time.monotonic() < deadline, "the renamed unit never reached the copy"
            await asyncio.sleep(0.02)

        await get_app(request)  # the calendar as the tables have it
        day_off = date(2026, 10, 23)
        assert (day_off, DAY_OFF) not in (app.calendar_days or frozenset())
        async with app.uow() as uow:
            await declare_day(uow, day_off, DAY_OFF, "nghỉ bù", declared_by="test", now=NOW)
        while (day_off, DAY_OFF) not in ((await get_app(request)).calendar_days or frozenset()):
            assert time.monotonic() < deadline, "the declared day never reached the API's calendar"
            await asyncio.sleep(0.02)
