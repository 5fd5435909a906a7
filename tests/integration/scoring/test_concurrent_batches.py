"""Events about one dossier applied while other transactions touch it still converge to its full state.

Consumers run several deliveries at once (prefetch, several workers) and the refresher judges
while they consume. The consumer only stores events and flags the dossier; judging folds it
from every stored event. Two races matter:

- two batches about one dossier committed in either order: the fold sees both;
- a batch stored while a judging chunk holds the dossier: that chunk cannot see the new event
  (not committed when it read), so the dossier must stay flagged and be judged again with it —
  and the consumer does not wait for the chunk (each flag is a row of its own in
  ``dossier_flag``: a consumer only inserts).

A rating (or a petition) arriving while its dossier's first events are judged or committed must
be judged too: the chunk may have read the ratings before it committed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Row, select, text

from services.scoring.adapters.repository import load_procedures
from services.scoring.adapters.tables import EPOCH, dossier, dossier_flag
from services.scoring.application.judging import judge_flagged_chunk
from services.scoring.application.recompute import live_periods
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_dossier_events, apply_rating

from .helpers import dissatisfied, judge_a_flagged_chunk, judge_all, load_reference, no_differences, until_waiting
from .scenario import NOW, _ev, _received

pytestmark = pytest.mark.integration


async def stored(app: Scoring, dossier_id: str) -> Row[Any]:
    async with app.sessions() as session:
        return (await session.execute(select(dossier).where(dossier.c.dossier_id == dossier_id))).one()


async def live_periods_of(app: Scoring) -> list[str]:
    async with app.sessions() as session:
        return await live_periods(session)


async def test_concurrent_batches_for_one_dossier_converge(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    first_batch = [_received(5, "RACE-1", "P01", "online")]
    second_batch = [_ev("completed", 7, "RACE-1", outcome="approved", result_digitized=True)]
    third_batch = [_ev("synced", 8, "RACE-1")]

    first = app.uow()
    await first.__aenter__()
    await apply_dossier_events(first_batch, first, now=NOW)

    async def apply(batch: list[Any]) -> None:
        async with app.uow() as uow:
            await apply_dossier_events(batch, uow, now=NOW)

    # A new dossier: the second batch waits for the first's commit (the dossier's row, created
    # with the first flag), then flags it too.
    second = asyncio.create_task(apply(second_batch))
    await until_waiting(app, 1, second)
    await first.__aexit__(None, None, None)
    await asyncio.wait_for(second, 30)
    # A known one: a flag of its own, no wait for a batch still open.
    third = app.uow()
    await third.__aenter__()
    await apply_dossier_events(third_batch, third, now=NOW)
    await asyncio.wait_for(apply([_ev("synced", 9, "RACE-1")]), 10)
    await third.__aexit__(None, None, None)
    await judge_all(app, NOW)

    row = await stored(app, "RACE-1")
    assert row.finished_at is not None, "the completed event was lost to a concurrent batch"
    async with app.sessions() as session:
        types = await session.execute(text("SELECT type FROM scoring.dossier_event WHERE dossier_id = 'RACE-1'"))
        assert len(types.all()) == 4


async def test_event_stored_during_judging_is_judged_next(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    async with app.uow() as uow:
        await apply_dossier_events([_received(5, "RACE-2", "P01", "online")], uow, now=NOW)

    judging = app.uow()
    await judging.__aenter__()
    procedures = await load_procedures(judging.session)
    assert await judge_flagged_chunk(judging.session, now=NOW, calendar=app.calendar, procedures=procedures) == 1

    # The consumer stores the completion while the chunk holds the dossier (and has taken its
    # flag), without waiting for it.
    async with app.uow() as uow:
        completed = _ev("completed", 7, "RACE-2", outcome="approved", result_digitized=True)
        await asyncio.wait_for(apply_dossier_events([completed], uow, now=NOW), 10)
    await judging.__aexit__(None, None, None)

    row = await stored(app, "RACE-2")
    assert row.finished_at is None, "the chunk judged before the completion was committed"
    assert row.recheck_at != EPOCH  # the chunk's own verdict …
    async with app.sessions() as session:  # … and the completion's flag, raised meanwhile, still up
        assert (await session.execute(select(dossier_flag.c.dossier_id))).scalars().all() == ["RACE-2"]
    await judge_all(app, NOW)
    row = await stored(app, "RACE-2")
    assert row.finished_at is not None


async def test_a_flag_being_raised_is_taken_once_committed(clean: Scoring) -> None:
    """Judging never waits for a consumer: a flag an open batch inserted is not there yet, and
    is taken the next time, once that batch committed."""
    app = clean
    await load_reference(app, NOW)
    consuming = app.uow()
    await consuming.__aenter__()
    await apply_dossier_events([_received(5, "RACE-3", "P01", "online")], consuming, now=NOW)
    async with app.uow() as uow:
        procedures = await load_procedures(uow.session)
        taken = judge_flagged_chunk(uow.session, now=NOW, calendar=app.calendar, procedures=procedures)
        assert await asyncio.wait_for(taken, 10) == 0
    await consuming.__aexit__(None, None, None)
    async with app.uow() as uow:
        assert await judge_flagged_chunk(uow.session, now=NOW, calendar=app.calendar, procedures=procedures) == 1
    assert (await stored(app, "RACE-3")).received_at is not None


async def test_two_chunks_from_the_same_end_take_different_dossiers_without_waiting(clean: Scoring) -> None:
    """The first and the third judging lanes both start from the start of the id order: the
    second chunk skips the dossiers the first has picked (their first flag is locked) instead of
    waiting for it and finding their flags gone."""
    app = clean
    await load_reference(app, NOW)
    async with app.uow() as uow:
        for n in range(4):  # two batches: two flags a dossier; two offices, whose counters the
            # two chunks write (a chunk waits for another's counter rows of the same office)
            unit = "P01" if n < 2 else "P02"
            await apply_dossier_events([_received(5, f"LANE-{n}", unit, "online")], uow, now=NOW)
            await apply_dossier_events([_ev("synced", 6, f"LANE-{n}")], uow, now=NOW)
    async with app.sessions() as s:
        procedures = await load_procedures(s)
    first = app.uow()
    await first.__aenter__()
    judge = {"now": NOW, "calendar": app.calendar, "procedures": procedures, "limit": 2}
    assert await judge_flagged_chunk(first.session, **judge) == 2  # type: ignore[arg-type]
    async with app.uow() as uow:  # the first still open: the second takes the next two at once
        assert await asyncio.wait_for(judge_flagged_chunk(uow.session, **judge), 10) == 2  # type: ignore[arg-type]
    await first.__aexit__(None, None, None)
    async with app.sessions() as session:
        assert (await session.execute(select(dossier_flag.c.dossier_id))).scalars().all() == []
        judged = (await session.execute(select(dossier.c.dossier_id, dossier.c.received_at))).all()
    assert sorted(d for d, received in judged if received is not None) == [f"LANE-{n}" for n in range(4)]


HANDLED = [
    _received(5, "RATED-1", "P01", "online"),
    _ev("completed", 7, "RATED-1", outcome="approved", result_digitized=True),
]
DISSATISFIED = dissatisfied("RATED-1", day=8)


async def test_a_rating_arriving_while_its_dossier_is_first_judged_is_judged(clean: Scoring) -> None:
    """The chunk judging a dossier for the first time has read its ratings (none) when a rating
    arrives: the rating waits for the chunk's row lock, then makes the dossier due again. Were the
    row the chunk's own, uncommitted, the rating would find nothing to flag (session 17's end-to-end
    month: 5.4 one too high)."""
    app = clean
    await load_reference(app, NOW)
    async with app.uow() as uow:
        await apply_dossier_events(HANDLED, uow, now=NOW)
    judging = app.uow()
    await judging.__aenter__()
    procedures = await load_procedures(judging.session)
    assert await judge_flagged_chunk(judging.session, now=NOW, calendar=app.calendar, procedures=procedures) == 1

    async def rate() -> None:
        async with app.uow() as uow:
            await apply_rating(DISSATISFIED, uow, now=NOW)

    rating = asyncio.create_task(rate())
    await until_waiting(app, 1, rating)
    await judging.__aexit__(None, None, None)
    await asyncio.wait_for(rating, 30)
    await refresh_once(app, now=NOW)  # judges what is due, then scores October
    assert await live_periods_of(app)  # scored: the comparison below is not empty
    await no_differences(app, HANDLED)


async def test_a_rating_committed_after_its_dossiers_judging_read_the_ratings_is_judged(clean: Scoring) -> None:
    """The rating's transaction began while the dossier's first events were not committed: it
    saw no row of it to flag. Its own flag (and the row, made to wait for the events' commit) has
    the chunk, which must lock that row, wait for the rating."""
    app = clean
    await load_reference(app, NOW)
    consuming = app.uow()
    await consuming.__aenter__()
    await apply_dossier_events(HANDLED, consuming, now=NOW)
    rated, commit_rating = asyncio.Event(), asyncio.Event()

    async def rate() -> None:
        async with app.uow() as uow:
            await apply_rating(DISSATISFIED, uow, now=NOW)
            rated.set()
            await commit_rating.wait()

    rating = asyncio.create_task(rate())
    await until_waiting(app, 1, rating, done=rated)
    await consuming.__aexit__(None, None, None)
    await asyncio.wait_for(rated.wait(), 30)

    judging = asyncio.create_task(judge_a_flagged_chunk(app, NOW))
    await until_waiting(app, 1, judging)
    commit_rating.set()
    await asyncio.wait_for(rating, 30)
    assert await asyncio.wait_for(judging, 30) == 1
    await refresh_once(app, now=NOW)  # judges what is due, then scores October
    assert await live_periods_of(app)  # scored: the comparison below is not empty
    await no_differences(app, HANDLED)
