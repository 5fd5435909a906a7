"""Races between the consumers, the feedback handlers, the catalogue and the judging chunks
(review of the flag design): each test stages one interleaving statement by statement and asserts
the invariant — no deadlock, no consumer waiting for a chunk, no lost update."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from services.scoring.adapters.calendar_store import rejudge_everything
from services.scoring.adapters.dossier_flags import PICK_FROM_START, TAKE
from services.scoring.adapters.repository import load_procedures
from services.scoring.application import judging
from services.scoring.application.judging import END_OF_TIME, judge_flagged_chunk
from services.scoring.application.recompute import live_periods
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_dossier_events, apply_rating
from shared.contracts import RawEvent
from shared.db import driver_connection

from .helpers import (
    CommitsAfterFirstCall,
    apply_batches,
    catalogue_change,
    dissatisfied,
    judge_a_flagged_chunk,
    judge_all,
    load_reference,
    no_differences,
    until_waiting,
)
from .scenario import NOW, PROCEDURE, _ev, _received

pytestmark = pytest.mark.integration


async def apply(app: Scoring, events: list[RawEvent]) -> None:
    await apply_batches(app, [events], NOW)


async def test_two_chunks_that_picked_one_dossier_by_different_first_flags_do_not_deadlock(clean: Scoring) -> None:
    """Flag ids come from a sequence, commits in any order: a batch holding the lower id commits
    after a chunk's PICK, whose snapshot saw only the higher one. Schedule:
    E1 inserts flag a (open) · E2 inserts flag b, commits · C1 PICK locks b (first it sees) ·
    E1 commits · C3 PICK locks a (now the first) · C1 TAKE waits for a · C3 TAKE waits for b."""
    app = clean
    await load_reference(app, NOW)
    await apply(app, [_received(5, "PICK-1", "P01", "online")])
    await judge_all(app, NOW)

    e1 = app.uow()
    await e1.__aenter__()
    await apply_dossier_events([_ev("synced", 6, "PICK-1")], e1, now=NOW)  # flag a (lower id), open
    await apply(app, [_ev("paid", 6, "PICK-1", amount_vnd=1, channel="counter")])  # flag b, committed

    c1, c3 = app.uow(), app.uow()
    await c1.__aenter__()
    await c3.__aenter__()
    conn1: Any = await driver_connection(c1.session)
    conn3: Any = await driver_connection(c3.session)
    try:
        assert [r[0] for r in await conn1.fetch(PICK_FROM_START, END_OF_TIME, 10)] == ["PICK-1"]
        await e1.__aexit__(None, None, None)
        picked = [r[0] for r in await conn3.fetch(PICK_FROM_START, END_OF_TIME, 10)]
        take1 = asyncio.create_task(conn1.fetch(TAKE, ["PICK-1"], END_OF_TIME))
        await until_waiting(app, 1, take1)
        take3 = asyncio.create_task(conn3.fetch(TAKE, picked, END_OF_TIME) if picked else asyncio.sleep(0))
        outcomes = await asyncio.wait_for(asyncio.gather(take1, take3, return_exceptions=True), 30)
        assert [type(o).__name__ for o in outcomes if isinstance(o, BaseException)] == [], (
            f"C3 picked {picked} too: {outcomes}"
        )
    finally:
        await c1.__aexit__(None, None, None)
        await c3.__aexit__(None, None, None)


async def test_a_feedback_transaction_rating_two_dossiers_does_not_deadlock_with_a_flagged_chunk(
    clean: Scoring,
) -> None:
    """The feedback consumer applies several messages in one transaction, each flag_for_feedback
    its own statement: rows locked in message order, not id order. Schedule:
    F rating of R-2 locks R-2 · C _LOCK locks R-1, waits for R-2 · F rating of R-1 waits for R-1."""
    app = clean
    await load_reference(app, NOW)
    await apply(app, [_received(5, "R-1", "P01", "online"), _received(5, "R-2", "P01", "online")])
    await judge_all(app, NOW)
    await apply(app, [_ev("synced", 6, "R-1"), _ev("synced", 6, "R-2")])  # both flagged again

    feedback = app.uow()
    await feedback.__aenter__()
    await apply_rating(dissatisfied("R-2", 1), feedback, now=NOW)

    judging = asyncio.create_task(judge_a_flagged_chunk(app, NOW))
    await until_waiting(app, 1, judging)
    rate = asyncio.create_task(apply_rating(dissatisfied("R-1", 2), feedback, now=NOW))
    [rated] = await asyncio.wait_for(asyncio.gather(rate, return_exceptions=True), 30)
    failed = rated if isinstance(rated, BaseException) else None
    await feedback.__aexit__(type(failed) if failed else None, failed, None)
    [judged] = await asyncio.wait_for(asyncio.gather(judging, return_exceptions=True), 30)
    outcomes = [rated, judged]
    assert [type(o).__name__ for o in outcomes if isinstance(o, BaseException)] == [], outcomes


async def test_a_catalogue_change_committed_during_a_judging_step_is_judged(
    clean: Scoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """judge_pending loads the catalogue once, at the step's start. Schedule: step loads TAX1
    (5 days) · catalogue handler commits TAX1 (1 day), sets REJUDGE on its dossiers · the same
    step's time chunk claims them (REJUDGE < now), judges with the 5-day copy, sets recheck_at
    ahead · later steps find nothing due: the 1-day limit never reaches the contributions."""
    app = clean
    await load_reference(app, NOW)
    await apply(
        app,
        [
            _received(5, "CAT-1", "P01", "online"),
            _ev("completed", 8, "CAT-1", outcome="approved", result_digitized=True),
        ],
    )
    await refresh_once(app, now=NOW)

    stricter = RawEvent(
        source="catalogue",
        event_id="proc-2",
        type="procedure.upserted",
        occurred_at="2026-02-01T00:00:00+07:00",
        data={**PROCEDURE.data, "time_limit_wd": 1},
    )
    original = judging.load_procedures  # where a judging step reads its catalogue
    load = CommitsAfterFirstCall(original, lambda: catalogue_change(app, stricter))
    monkeypatch.setattr(judging, "load_procedures", load)
    await refresh_once(app, now=NOW)  # the step during which the catalogue changes
    assert load.done
    monkeypatch.setattr(judging, "load_procedures", original)
    await refresh_once(app, now=NOW)  # the steps that follow
    await refresh_once(app, now=NOW)

    rows = "SELECT period, dossier_id, flags, handling_days FROM scoring.contribution ORDER BY 1, 2"
    async with app.sessions() as session:
        after_steps = (await session.execute(text(rows))).all()
    async with app.uow() as uow:  # the oracle: everything judged again with today's catalogue
        await rejudge_everything(uow.session)
    await judge_all(app, NOW)
    async with app.sessions() as session:
        judged_afresh = (await session.execute(text(rows))).all()
    assert after_steps == judged_afresh, "the catalogue change was judged with the step's older copy"


async def test_a_batch_does_not_wait_for_a_chunk_behind_a_feedback_transaction(clean: Scoring) -> None:
    """Schedule: F rates NEW-1 (no row: inserts its row and a flag, uncommitted) · C judges OLD-1
    (holds its row) · F rates OLD-1 · E brings NEW-1's first event. Were F to wait for C's row,
    E's insert of NEW-1's row (meeting F's) would wait for C too; F flags OLD-1 instead, so E
    waits for F's commit at most, and both ratings count."""
    app = clean
    await load_reference(app, NOW)
    await apply(app, [_received(5, "OLD-1", "P01", "online"), _ev("completed", 8, "OLD-1", outcome="approved")])

    judging = app.uow()
    await judging.__aenter__()
    try:
        async with app.uow() as feedback:
            await apply_rating(dissatisfied("NEW-1", 1), feedback, now=NOW)
            procedures = await load_procedures(judging.session)
            chunk = judge_flagged_chunk(judging.session, now=NOW, calendar=app.calendar, procedures=procedures)
            assert await chunk == 1
            await asyncio.wait_for(apply_rating(dissatisfied("OLD-1", 2), feedback, now=NOW), 10)  # no wait for C
        await asyncio.wait_for(
            apply(app, [_received(5, "NEW-1", "P01", "online"), _ev("completed", 8, "NEW-1", outcome="approved")]),
            10,
        )  # C still open
    finally:
        await judging.__aexit__(None, None, None)
    await refresh_once(app, now=NOW)
    async with app.sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM scoring.dossier_flag")) == 0
        assert await live_periods(session)
    await no_differences(
        app,
        [
            _received(5, "OLD-1", "P01", "online"),
            _ev("completed", 8, "OLD-1", outcome="approved"),
            _received(5, "NEW-1", "P01", "online"),
            _ev("completed", 8, "NEW-1", outcome="approved"),
        ],
    )


async def test_batches_repeating_events_in_another_order_do_not_deadlock(clean: Scoring) -> None:
    """_INSERT_EVENTS inserts in message order. Schedule: H inserts e0 (open) · B1 [e1, e0, e2]
    inserts e1, waits for H on e0 · B2 [e2, e1] inserts e2, waits for B1 on e1 · H commits ·
    B1 waits for B2 on e2."""
    app = clean
    await load_reference(app, NOW)
    await apply(app, [_received(5, "DUP-1", "P01", "online")])
    e0, e1, e2 = (_ev("synced", d, "DUP-1") for d in (6, 7, 8))
    holder = app.uow()
    await holder.__aenter__()
    await apply_dossier_events([e0], holder, now=NOW)
    b1 = asyncio.create_task(apply(app, [e1, e0, e2]))
    await until_waiting(app, 1, b1)
    b2 = asyncio.create_task(apply(app, [e2, e1]))
    await until_waiting(app, 2, b2)
    await holder.__aexit__(None, None, None)
    outcomes = await asyncio.wait_for(asyncio.gather(b1, b2, return_exceptions=True), 30)
    assert [type(o).__name__ for o in outcomes if isinstance(o, BaseException)] == [], outcomes
