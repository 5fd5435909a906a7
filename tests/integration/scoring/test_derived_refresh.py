"""The live refresher recomputes a running quarter or year at most every few seconds.

While events stream in, every refresh re-scores most units of every dirty period; the derived
periods (quarter, year) would take the worker's CPU from the month, whose freshness is the
target. A derived period computed less than ``derived_every`` seconds ago stays marked and is
taken by a later tick (any worker: the last computation is read from ``period_state``), and a
tick takes at most one of them, so the month never waits for a quarter and a year together.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.scoring.adapters.tables import dirty_period, period_state
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import mark_dirty

from .helpers import load_reference
from .scenario import NOW

pytestmark = pytest.mark.integration


async def marked(app: Scoring) -> set[str]:
    async with app.sessions() as session:
        return set((await session.execute(select(dirty_period.c.period))).scalars())


async def test_quarter_and_year_wait_while_the_month_refreshes_every_tick(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    month, quarter, year = "2026-11", "2026-Q4", "2026"
    async with app.uow() as uow:
        await mark_dirty(uow, [month, quarter, year])
    # Never computed: all due, but one derived period a tick (the month never waits for two).
    assert await refresh_once(app, now=NOW, derived_every=5) == [month, quarter]
    assert await refresh_once(app, now=NOW, derived_every=5) == [year]

    async with app.uow() as uow:
        await mark_dirty(uow, [month, quarter, year])
    soon = NOW + timedelta(seconds=1)
    assert await refresh_once(app, now=soon, derived_every=5) == [month]
    assert await marked(app) == {quarter, year}, "the waiting periods must stay marked"

    later = NOW + timedelta(seconds=6)
    assert await refresh_once(app, now=later, derived_every=5) == [quarter]
    assert await refresh_once(app, now=later + timedelta(seconds=0.3), derived_every=5) == [year]
    assert await marked(app) == set()


async def test_without_bounds_every_marked_period_is_recomputed_in_one_tick(clean: Scoring) -> None:
    """Tests and direct recomputation (no interval given) take every marked period at once."""
    await load_reference(clean, NOW)
    async with clean.uow() as uow:
        await mark_dirty(uow, ["2026-11", "2026-Q4", "2026"])
    assert await refresh_once(clean, now=NOW) == ["2026-11", "2026-Q4", "2026"]


async def test_a_month_another_worker_just_computed_waits_for_the_tick(clean: Scoring) -> None:
    """Two workers share the month: neither recomputes it sooner than the tick after the other."""
    app = clean
    await load_reference(app, NOW)
    async with app.uow() as uow:
        await mark_dirty(uow, ["2026-11"])
    assert "2026-11" in await refresh_once(app, now=NOW, month_every=0.25)
    async with app.uow() as uow:
        await mark_dirty(uow, ["2026-11"])
    assert "2026-11" not in await refresh_once(app, now=NOW + timedelta(seconds=0.1), month_every=0.25)
    assert "2026-11" in await marked(app)
    assert "2026-11" in await refresh_once(app, now=NOW + timedelta(seconds=0.3), month_every=0.25)


async def test_the_month_and_the_quarter_are_recomputed_side_by_side(clean: Scoring) -> None:
    """A tick recomputes the months and the derived period due at once, on two connections: the
    next tick's judging waits for the slower of the two, not for both in turn. Here the month is
    held up (a lock on its period_state rows) and the quarter commits meanwhile."""
    app = clean
    await load_reference(app, NOW)
    month, quarter = "2026-11", "2026-Q4"
    async with app.uow() as uow:
        await mark_dirty(uow, [month, quarter])
    assert {month, quarter} <= set(await refresh_once(app, now=NOW))  # both have period_state rows now
    async with app.uow() as uow:
        await mark_dirty(uow, [month, quarter])

    later = NOW + timedelta(seconds=30)
    async with app.engine.connect() as blocker:
        await blocker.execute(select(period_state.c.period).where(period_state.c.period == month).with_for_update())
        tick = asyncio.create_task(refresh_once(app, now=later, derived_every=5))
        deadline = time.monotonic() + 30
        while (await state_of(app, quarter)) != later:
            assert time.monotonic() < deadline, "the quarter waited for the month"
            assert not tick.done(), tick
            await asyncio.sleep(0.02)
        assert await state_of(app, month) == NOW and not tick.done()
        await blocker.rollback()
    assert await tick == [month, quarter]
    assert await state_of(app, month) == later


async def state_of(app: Scoring, period: str) -> datetime | None:
    async with app.sessions() as session:
        return (
            await session.execute(select(func.min(period_state.c.computed_at)).where(period_state.c.period == period))
        ).scalar()
