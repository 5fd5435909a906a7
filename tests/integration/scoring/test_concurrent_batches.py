"""Events about one dossier applied while other transactions touch it still converge to its full state.

Consumers run several deliveries at once (prefetch, several workers) and the refresher judges
while they consume. The consumer only stores events and flags the dossier; judging folds it
from every stored event. Two races matter:

- two batches about one dossier committed in either order: the fold sees both;
- a batch stored while a judging chunk holds the dossier: that chunk cannot see the new event
  (not committed when it read), so the dossier must stay flagged and be judged again with it —
  and the consumer does not wait for the chunk (its flag is a row of ``dossier_flag``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import Row, select, text

from services.scoring.adapters.dossier_flags import hand_over
from services.scoring.adapters.repository import load_procedures
from services.scoring.adapters.tables import EPOCH, dossier, dossier_flag
from services.scoring.application.judging import END_OF_TIME, judge_chunk, judge_due
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_dossier_events
from shared.db import driver_connection

from .helpers import load_reference
from .scenario import NOW, _ev, _received

pytestmark = pytest.mark.integration


async def judge_all(app: Scoring) -> None:
    async with app.uow() as uow:
        procedures = await load_procedures(uow.session)
        await judge_due(uow.session, now=NOW, calendar=app.calendar, procedures=procedures)


async def stored(app: Scoring, dossier_id: str) -> Row[Any]:
    async with app.sessions() as session:
        return (await session.execute(select(dossier).where(dossier.c.dossier_id == dossier_id))).one()


async def wait_for_lock_waiter(app: Scoring, deadline_s: float = 10) -> None:
    """Until some other connection waits on a row lock (a batch blocked by another's flag)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        async with app.sessions() as session:
            waiting = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no transaction ever waited for another's row lock")


async def test_concurrent_batches_for_one_dossier_converge(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    first_batch = [_received(5, "RACE-1", "P01", "online")]
    second_batch = [_ev("completed", 7, "RACE-1", outcome="approved", result_digitized=True)]

    first = app.uow()
    await first.__aenter__()
    await apply_dossier_events(first_batch, first, now=NOW)

    async def second() -> None:
        async with app.uow() as uow:
            await apply_dossier_events(second_batch, uow, now=NOW)

    racing = asyncio.create_task(second())
    await wait_for_lock_waiter(app)  # the second waits for the first's flag on the same dossier
    await first.__aexit__(None, None, None)
    await asyncio.wait_for(racing, 10)
    await judge_all(app)

    row = await stored(app, "RACE-1")
    assert row.finished_at is not None, "the completed event was lost to a concurrent batch"


async def test_event_stored_during_judging_is_judged_next(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    async with app.uow() as uow:
        await apply_dossier_events([_received(5, "RACE-2", "P01", "online")], uow, now=NOW)
        await hand_over(await driver_connection(uow.session), accepted_before=END_OF_TIME)

    judging = app.uow()
    await judging.__aenter__()
    procedures = await load_procedures(judging.session)
    assert await judge_chunk(judging.session, now=NOW, calendar=app.calendar, procedures=procedures) == 1

    # The consumer stores the completion while the chunk holds the dossier, without waiting for it.
    async with app.uow() as uow:
        completed = _ev("completed", 7, "RACE-2", outcome="approved", result_digitized=True)
        await asyncio.wait_for(apply_dossier_events([completed], uow, now=NOW), 10)
    await judging.__aexit__(None, None, None)

    row = await stored(app, "RACE-2")
    assert row.finished_at is None, "the chunk judged before the completion was committed"
    assert row.recheck_at != EPOCH  # the chunk's own verdict …
    async with app.sessions() as session:  # … and the completion's flag, raised meanwhile, still up
        assert (await session.execute(select(dossier_flag.c.dossier_id))).scalars().all() == ["RACE-2"]
    await judge_all(app)
    row = await stored(app, "RACE-2")
    assert row.finished_at is not None


async def test_a_flag_being_raised_is_handed_over_once_committed(clean: Scoring) -> None:
    """The hand-over never waits for a consumer: it skips a flag an open batch holds, and takes it
    the next time, once that batch committed."""
    app = clean
    await load_reference(app, NOW)
    consuming = app.uow()
    await consuming.__aenter__()
    await apply_dossier_events([_received(5, "RACE-3", "P01", "online")], consuming, now=NOW)
    async with app.uow() as uow:
        conn = await driver_connection(uow.session)
        assert await asyncio.wait_for(hand_over(conn, accepted_before=END_OF_TIME), 10) == 0
    await consuming.__aexit__(None, None, None)
    async with app.uow() as uow:
        assert await hand_over(await driver_connection(uow.session), accepted_before=END_OF_TIME) == 1
    row = await stored(app, "RACE-3")
    assert row.recheck_at == EPOCH
    await judge_all(app)
    assert (await stored(app, "RACE-3")).received_at is not None
