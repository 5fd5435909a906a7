"""A catalogue change, or a day declared or withdrawn, judged with a judging step's older copy is
judged again whatever becomes of the worker that ran the step: its step's row outlives it, and
another worker takes the row over once its lease has expired
(services.scoring.adapters.judging_steps)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from services.scoring.adapters.calendar_store import DAY_OFF, declare_day, rejudge_everything, undeclare_day
from services.scoring.adapters.judging_steps import open_step
from services.scoring.application import judging, refresher
from services.scoring.application.refresher import judge_step, recompute_dirty, refresh_once
from services.scoring.bootstrap import Scoring
from shared.contracts import RawEvent
from shared.db import driver_connection

from .helpers import CommitsAfterFirstCall, apply_batches, catalogue_change, judge_all, load_reference, no_differences
from .scenario import NOW, PROCEDURE, _ev, _received

pytestmark = pytest.mark.integration

# TAX1 with a 1-working-day limit instead of 5: CAT-1 (received Mon 5, done Thu 8 October) and
# CAT-2 (received Mon 12, done Thu 15) turn late.
STRICTER = RawEvent(
    source="catalogue",
    event_id="proc-2",
    type="procedure.upserted",
    occurred_at="2026-02-01T00:00:00+07:00",
    data={**PROCEDURE.data, "time_limit_wd": 1},
)
JUDGED_BEFORE = [
    _received(5, "CAT-1", "P01", "online"),
    _ev("completed", 8, "CAT-1", outcome="approved", result_digitized=True),
]
NOT_JUDGED_YET = [
    _received(12, "CAT-2", "P01", "online"),
    _ev("completed", 15, "CAT-2", outcome="approved", result_digitized=True),
]
CONTRIBUTIONS = "SELECT period, dossier_id, unit_code, procedure_code, flags, handling_days FROM scoring.contribution"
DUE = "SELECT count(*) FROM scoring.dossier WHERE recheck_at < :now"


async def assert_nothing_left_due(app: Scoring) -> None:
    """No dossier due at NOW and no flag left: the staged step took every mark."""
    async with app.sessions() as session:
        assert await session.scalar(text(DUE), {"now": NOW}) == 0
        assert await session.scalar(text("SELECT count(*) FROM scoring.dossier_flag")) == 0


async def contributions(app: Scoring) -> list[Any]:
    async with app.sessions() as session:
        return sorted((await session.execute(text(CONTRIBUTIONS))).all())


async def judged_from_scratch(app: Scoring) -> list[Any]:
    """The oracle: every dossier judged again, from its stored facts, with today's catalogue."""
    async with app.uow() as uow:
        await rejudge_everything(uow.session)
    await judge_all(app, NOW)
    return await contributions(app)


async def step_judging_with_the_older_copy(app: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    """One refresh of ``app`` during which TAX1 becomes STRICTER, committed just after the step
    loaded the catalogue: the step's time chunk takes CAT-1 (which the change made due, REJUDGE)
    and its flagged chunk folds CAT-2 (whose row had no procedure for the change to find), both
    judged with the 5-day copy. The step's row is given a lease that is over at once (a worker
    dead for longer than the lease)."""
    load = CommitsAfterFirstCall(judging.load_procedures, lambda: catalogue_change(app, STRICTER))
    with monkeypatch.context() as patch:
        patch.setattr(judging, "load_procedures", load)  # where a judging step reads its catalogue
        patch.setattr(refresher, "STEP_LEASE_S", -refresher.JUDGE_BUDGET_S, raising=False)
        await refresh_once(app, now=NOW)
    assert load.done
    await assert_nothing_left_due(app)  # the change's mark consumed by the step, CAT-2's flag taken


async def a_step_judged_with_the_older_copy(app: Scoring, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """CAT-1 judged, CAT-2 received, then the step during which the catalogue changes
    (:func:`step_judging_with_the_older_copy`); returns the contributions it left."""
    await load_reference(app, NOW)
    await apply_batches(app, [JUDGED_BEFORE], NOW)
    await refresh_once(app, now=NOW)
    await apply_batches(app, [NOT_JUDGED_YET], NOW)
    await step_judging_with_the_older_copy(app, monkeypatch)
    return await contributions(app)


async def test_a_change_judged_with_the_older_copy_by_a_worker_that_then_died_is_judged_again(
    clean: Scoring, new_pod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = clean
    stale = await a_step_judged_with_the_older_copy(dying, monkeypatch)
    # The worker dies here: the new pod has nothing of its memory.
    pod = new_pod()
    await refresh_once(pod, now=NOW)
    after = await contributions(pod)
    afresh = await judged_from_scratch(pod)
    assert stale != afresh, "the staged step did not judge with the older copy"
    assert after == afresh, "the change judged with the dead worker's older copy was never judged again"
    await refresh_once(pod, now=NOW)
    await no_differences(pod, [*JUDGED_BEFORE, *NOT_JUDGED_YET, STRICTER])


async def test_two_workers_take_a_dead_steps_row_over_once_and_then_rejudge_nothing(
    clean: Scoring, new_pod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker B takes the dead step's row over but dies before committing; worker C, meanwhile,
    neither waits for B nor takes the row too; once B's transaction is gone the row is there
    again and C's next step takes it over. After that neither worker re-judges anything."""
    dying = clean
    stale = await a_step_judged_with_the_older_copy(dying, monkeypatch)
    assert dying.judging_step is not None
    dead = dying.judging_step.id
    b, c = new_pod(), new_pod()

    class Died(Exception):
        pass

    with pytest.raises(Died):
        async with b.uow() as uow:
            opened = await open_step(await driver_connection(uow.session), previous=None, lease_s=60)
            assert (opened.taken_over, opened.moved) == ([dead], ["TAX1"])
            # C steps meanwhile: the row B holds is skipped, not waited for, not taken again.
            assert await asyncio.wait_for(judge_step(c, NOW), 30) == 0
            assert await contributions(c) == stale
            raise Died  # B's connection goes, its transaction with it
    assert await judge_step(c, NOW) > 0  # the dead step's row, there again: taken over by C
    after = await contributions(c)
    async with c.sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM scoring.judging_step WHERE id = :id"), {"id": dead}) == 0
    for _ in range(2):  # then every step of either judges nothing: nothing re-judged again and again
        assert (await judge_step(b, NOW), await judge_step(c, NOW)) == (0, 0)
    async with c.sessions() as session:  # one row per worker stepping
        assert await session.scalar(text("SELECT count(*) FROM scoring.judging_step")) == 2
    assert after == await judged_from_scratch(c) != stale


async def test_a_worker_whose_row_was_taken_over_mid_step_reconciles_its_own_copy(
    clean: Scoring, new_pod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step outlasting its lease: B takes A's row over (re-judging TAX1's dossiers) after the
    change, before A's chunks ran; A's chunks then judge them with A's older copy again. A's next
    step no longer finds its row, and reconciles from the snapshot it remembers."""
    a = clean
    await load_reference(a, NOW)
    await apply_batches(a, [JUDGED_BEFORE], NOW)
    await refresh_once(a, now=NOW)
    await apply_batches(a, [NOT_JUDGED_YET], NOW)
    b = new_pod()
    original = refresher.judge_flagged_chunk
    taken: list[list[int]] = []
    lock = asyncio.Lock()

    async def taken_over_first(session: Any, **kw: Any) -> int:
        async with lock:  # the first chunk of either lane; the other lane waits for it
            if not taken:  # A's step is open, committed, its catalogue copy the older one
                async with b.uow() as uow:
                    conn = await driver_connection(uow.session)
                    taken.append((await open_step(conn, previous=None, lease_s=60)).taken_over)
        return await original(session, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(refresher, "judge_flagged_chunk", taken_over_first)
        await step_judging_with_the_older_copy(a, monkeypatch)
    assert a.judging_step is not None and taken == [[a.judging_step.id]]
    stale = await contributions(a)
    await refresh_once(a, now=NOW)
    after = await contributions(a)
    assert after == await judged_from_scratch(a) != stale


# Two declared days off: Wed 7 October is one of CAT-1's handling days (Mon 5 → Thu 8), Tue 13 one
# of CAT-2's (Mon 12 → Thu 15); both dossiers are judged with one working day less.
DAYS_OFF = (date(2026, 10, 7), date(2026, 10, 13))
WRITTEN = "SELECT written_by FROM scoring.calendar_written"


async def declare(app: Scoring, note: str | None = None) -> None:
    async with app.uow() as uow:
        for day in DAYS_OFF:
            await declare_day(uow, day, DAY_OFF, note, declared_by="admin", now=NOW)


async def withdraw(app: Scoring) -> None:
    async with app.uow() as uow:
        for day in DAYS_OFF:
            assert await undeclare_day(uow, day)


async def step_judging_with_the_older_calendar(
    app: Scoring,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Scoring], Awaitable[None]],
    *,
    commits: str,
    lease_over: bool,
) -> None:
    """One refresh of ``app`` during which the declared days change (``change``, its own
    transaction, re-judging everything), committed either just after the step loaded its copies
    (``commits="after the step's copies"``: the step's chunks judge CAT-1, made due, and CAT-2,
    flagged, with the older calendar) or just before the step's opening statement (``"before the
    step's opening"``: a step whose calendar copy was read before its snapshot would judge them
    with the older calendar, and a snapshot that saw the change would find nothing to re-judge).
    ``lease_over``: the step's row is given a lease that is over at once (a worker dead for longer
    than the lease)."""
    changed = asyncio.Event()

    async def once() -> None:
        if not changed.is_set():
            changed.set()
            await change(app)

    load, open_ = judging.load_procedures, judging.open_step  # what a judging step's opening calls

    async def load_then_change(session: Any) -> Any:
        procedures = await load(session)  # the calendar copy is read by now
        if commits == "after the step's copies":
            await once()
        return procedures

    async def change_then_open(conn: Any, **kw: Any) -> Any:
        if commits == "before the step's opening":
            await once()
        return await open_(conn, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(judging, "load_procedures", load_then_change)
        patch.setattr(judging, "open_step", change_then_open)
        if lease_over:
            patch.setattr(refresher, "STEP_LEASE_S", -refresher.JUDGE_BUDGET_S, raising=False)
        await refresh_once(app, now=NOW)
    assert changed.is_set()
    await assert_nothing_left_due(app)  # the change's marks consumed by the step, CAT-2's flag taken


@pytest.mark.parametrize("commits", ["after the step's copies", "before the step's opening"])
@pytest.mark.parametrize("change", ["declared", "withdrawn"])
@pytest.mark.parametrize("next_step", ["a new worker's", "the same worker's"])
async def test_days_declared_or_withdrawn_during_a_step_are_judged_again_by_the_next_step(
    clean: Scoring, new_pod: Any, monkeypatch: pytest.MonkeyPatch, commits: str, change: str, next_step: str
) -> None:
    """A new worker's next step: the worker that judged with the older calendar died (its row's
    lease over), and the new one has no copy of its own to compare with. The same worker's: it
    lives on and steps again."""
    first = clean
    await load_reference(first, NOW)
    if change == "withdrawn":
        await declare(first)
    await apply_batches(first, [JUDGED_BEFORE], NOW)
    await refresh_once(first, now=NOW)
    await apply_batches(first, [NOT_JUDGED_YET], NOW)
    new_worker = next_step == "a new worker's"
    await step_judging_with_the_older_calendar(
        first, monkeypatch, declare if change == "declared" else withdraw, commits=commits, lease_over=new_worker
    )
    stale = await contributions(first)
    # The first worker dies here (a new worker's step): the new pod has nothing of its memory.
    second = new_pod() if new_worker else first
    await refresh_once(second, now=NOW)
    after = await contributions(second)
    afresh = await judged_from_scratch(second)
    if commits == "after the step's copies":
        assert stale != afresh, "the staged step did not judge with the older calendar"
    assert after == afresh, "the calendar change judged with the older copy was never judged again"
    await refresh_once(second, now=NOW)
    await no_differences(second, [*JUDGED_BEFORE, *NOT_JUDGED_YET])


async def test_a_step_re_judges_everything_once_per_calendar_change_and_never_when_nothing_moved(
    clean: Scoring, new_pod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step judges nothing when nothing changed: no calendar write, a note changed alone, a gone
    worker's row taken over. A declaration between two steps is judged once by the next step
    (its marks and the opening's re-judging are the same dossiers), not again after."""
    a = clean
    await load_reference(a, NOW)
    await apply_batches(a, [JUDGED_BEFORE, NOT_JUDGED_YET], NOW)
    await refresh_once(a, now=NOW)
    assert await judge_step(a, NOW) == 0
    await declare(a)
    assert await judge_step(a, NOW) == 2  # CAT-1 and CAT-2, once
    assert await judge_step(a, NOW) == 0
    async with a.sessions() as session:
        written = await session.scalar(text(WRITTEN))
    await declare(a, note="bão")  # the same days, another note: judging reads none of it
    async with a.sessions() as session:
        assert await session.scalar(text(WRITTEN)) == written
    assert await judge_step(a, NOW) == 0
    with monkeypatch.context() as patch:  # a's row, left by a worker that dies, lease over
        patch.setattr(refresher, "STEP_LEASE_S", -refresher.JUDGE_BUDGET_S, raising=False)
        assert await judge_step(a, NOW) == 0
    b = new_pod()
    assert await judge_step(b, NOW) == 0  # takes a's row over: nothing it could not see
    async with b.sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM scoring.judging_step")) == 1
    await recompute_dirty(b, NOW)
    await no_differences(b, [*JUDGED_BEFORE, *NOT_JUDGED_YET])
