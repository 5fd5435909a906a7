"""A catalogue change judged with a judging step's older copy is judged again whatever becomes of
the worker that ran the step: its step's row outlives it, and another worker takes the row over
once its lease has expired (services.scoring.adapters.judging_steps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from services.scoring.adapters.calendar_store import rejudge_everything
from services.scoring.adapters.judging_steps import open_step
from services.scoring.application import refresher
from services.scoring.application.refresher import judge_step, refresh_once
from services.scoring.bootstrap import Scoring, bootstrap
from services.scoring.handlers.messages import apply_procedure_events
from services.scoring.settings import ScoringSettings
from shared.contracts import RawEvent
from shared.db import driver_connection

from .helpers import apply_batches, judge_all, load_reference, no_differences
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


@pytest.fixture
async def new_pod(clean: Scoring, settings: ScoringSettings) -> AsyncIterator[Any]:
    """Fresh compositions, as a new pod (or a second worker) has: nothing of another's memory."""
    apps: list[Scoring] = []

    def start() -> Scoring:
        apps.append(bootstrap(settings))
        return apps[-1]

    yield start
    for app in apps:
        await app.dispose()


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
    original = refresher.load_procedures
    changed = asyncio.Event()

    async def load_then_catalogue_commits(session: Any) -> Any:
        procedures = await original(session)
        if not changed.is_set():
            changed.set()
            async with app.uow() as uow:
                await apply_procedure_events([STRICTER], uow, now=NOW)
        return procedures

    with monkeypatch.context() as patch:
        patch.setattr(refresher, "load_procedures", load_then_catalogue_commits)
        patch.setattr(refresher, "STEP_LEASE_S", -refresher.JUDGE_BUDGET_S, raising=False)
        await refresh_once(app, now=NOW)
    assert changed.is_set()
    async with app.sessions() as session:
        # The change's mark was consumed by the step, CAT-2's flag taken: nothing left due.
        assert await session.scalar(text(DUE), {"now": NOW}) == 0
        assert await session.scalar(text("SELECT count(*) FROM scoring.dossier_flag")) == 0


async def test_a_change_judged_with_the_older_copy_by_a_worker_that_then_died_is_judged_again(
    clean: Scoring, new_pod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = clean
    await load_reference(dying, NOW)
    await apply_batches(dying, [JUDGED_BEFORE], NOW)
    await refresh_once(dying, now=NOW)
    await apply_batches(dying, [NOT_JUDGED_YET], NOW)
    await step_judging_with_the_older_copy(dying, monkeypatch)
    stale = await contributions(dying)
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
    await load_reference(dying, NOW)
    await apply_batches(dying, [JUDGED_BEFORE], NOW)
    await refresh_once(dying, now=NOW)
    await apply_batches(dying, [NOT_JUDGED_YET], NOW)
    await step_judging_with_the_older_copy(dying, monkeypatch)
    stale = await contributions(dying)
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
