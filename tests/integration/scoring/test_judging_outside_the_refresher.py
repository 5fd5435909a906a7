"""Judging outside the refresher's steps: ``compute_period(judge=True)`` and ``./sqi recompute``.

``compute_period(judge=True)`` judges every due dossier (``judge_due``) in its caller's transaction.
It used to read its catalogue and judge with the caller's calendar without a judging step, so a
catalogue change or a declared day committed while it judged was judged with the older copy, its
re-judging marks consumed, and no later step knew: the contributions stayed wrong. It now opens a
step in its own transaction (services.scoring.application.judging.judge_due_in_step), whose row
commits with what it judged, and the next step of any worker — or the next such computation —
judges again what its copies could not see.

The recompute tool judges the replayed log in memory and compares; its transaction is read only,
so it stores nothing, stale or not (services.scoring.recompute_cli.compare_with_live).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import recompute_cli
from services.scoring.adapters import repository
from services.scoring.application import judging, scoring_service
from services.scoring.application.caches import sync_calendar
from services.scoring.application.refresher import judge_step, refresh_once
from services.scoring.bootstrap import Scoring

from .helpers import CommitsAfterFirstCall, apply_batches, catalogue_change, compute, load_reference, no_differences
from .scenario import NOW, PROCEDURE, dossier_events
from .test_judging_steps import (
    JUDGED_BEFORE,
    NOT_JUDGED_YET,
    STRICTER,
    assert_nothing_left_due,
    contributions,
    declare,
    judged_from_scratch,
)

pytestmark = pytest.mark.integration

EVENTS = [*JUDGED_BEFORE, *NOT_JUDGED_YET]


async def stricter_catalogue(app: Scoring) -> None:
    await catalogue_change(app, STRICTER)


async def compute_judging_with_the_older_copy(
    app: Scoring, monkeypatch: pytest.MonkeyPatch, change: Callable[[Scoring], Awaitable[None]]
) -> None:
    """CAT-1 judged (a refresh), CAT-2 received, then ``compute_period(judge=True)`` of October
    during which ``change`` commits (its own transaction, on another connection), just after the
    computation read its catalogue (its calendar before that): its time chunk takes CAT-1 (made
    due by the change) and its flagged chunk folds CAT-2, both judged with the older copies."""
    await load_reference(app, NOW)
    await apply_batches(app, [JUDGED_BEFORE], NOW)
    await refresh_once(app, now=NOW)
    await apply_batches(app, [NOT_JUDGED_YET], NOW)
    load = CommitsAfterFirstCall(repository.load_procedures, lambda: change(app))
    with monkeypatch.context() as patch:
        patch.setattr(scoring_service, "load_procedures", load)  # where it read its catalogue before
        patch.setattr(judging, "load_procedures", load, raising=False)  # where its judging step reads it now
        await compute(app, "2026-10", NOW)
    assert load.done
    await assert_nothing_left_due(app)  # the change's marks consumed by the computation, CAT-2's flag taken


@pytest.mark.parametrize("change", ["catalogue", "calendar"])
@pytest.mark.parametrize("next_step", ["a new worker's refresher step", "the next computation"])
async def test_a_change_committed_while_compute_period_judges_is_judged_again_next(
    clean: Scoring, new_pod: Callable[[], Scoring], monkeypatch: pytest.MonkeyPatch, change: str, next_step: str
) -> None:
    """A new worker's step: one with no memory of its own (the first worker's previous step would
    reconcile its own copies, which are not the computation's). The next computation: nothing but
    ``compute_period(judge=True)`` runs (tests, a tool)."""
    app = clean
    committed = stricter_catalogue if change == "catalogue" else declare
    await compute_judging_with_the_older_copy(app, monkeypatch, committed)
    stale = await contributions(app)
    if next_step == "the next computation":
        after_app = app
        await compute(app, "2026-10", NOW)
    else:
        after_app = new_pod()
        await refresh_once(after_app, now=NOW)
    after = await contributions(after_app)
    oracle = new_pod()  # today's calendar (``app.calendar`` is the copy of its last sync)
    async with oracle.sessions() as session:
        await sync_calendar(oracle, session)
    afresh = await judged_from_scratch(oracle)
    assert stale != afresh, "the staged computation did not judge with the older copy"
    assert after == afresh, "the change judged with the computation's older copy was never judged again"
    await refresh_once(oracle, now=NOW)
    await no_differences(oracle, [*EVENTS, *([STRICTER] if change == "catalogue" else [])])


async def test_a_computation_judges_with_the_declared_days_not_its_callers_older_calendar(
    clean: Scoring, new_pod: Callable[[], Scoring]
) -> None:
    """Days declared before the computation but after its caller's copy was read (``app.calendar``
    here is the one of its last sync, before the declaration): the step reads the calendar after
    its snapshot, so the declaration's marks are judged with it, not consumed with the older copy
    (which no later step could tell: the declaration committed before the step's snapshot)."""
    app = clean
    await load_reference(app, NOW)
    await apply_batches(app, [JUDGED_BEFORE], NOW)
    await refresh_once(app, now=NOW)
    await apply_batches(app, [NOT_JUDGED_YET], NOW)
    await declare(app)
    await compute(app, "2026-10", NOW)
    judged = await contributions(app)
    oracle = new_pod()
    async with oracle.sessions() as session:
        await sync_calendar(oracle, session)
    assert judged == await judged_from_scratch(oracle)


async def test_a_computation_leaves_nothing_to_judge_again_when_nothing_changed(
    clean: Scoring, new_pod: Callable[[], Scoring]
) -> None:
    """Its step's row is taken over by the next step, which finds nothing its copies missed."""
    app = clean
    await load_reference(app, NOW)
    await apply_batches(app, [EVENTS], NOW)
    await compute(app, "2026-10", NOW)
    judged = await contributions(app)
    async with app.sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM scoring.judging_step")) == 1
    pod = new_pod()
    assert await judge_step(pod, NOW) == 0  # takes the computation's row over: nothing it missed
    assert await contributions(pod) == judged
    async with pod.sessions() as session:  # the computation's row released: the pod's own left
        assert await session.scalar(text("SELECT count(*) FROM scoring.judging_step")) == 1


STATE = (
    "SELECT 'contribution', count(*), md5(string_agg(c::text, ',' ORDER BY c::text)) FROM scoring.contribution c "
    "UNION ALL SELECT 'dossier', count(*), md5(string_agg(d::text, ',' ORDER BY d::text)) FROM scoring.dossier d "
    "UNION ALL SELECT 'flag', count(*), NULL FROM scoring.dossier_flag "
    "UNION ALL SELECT 'step', count(*), md5(string_agg(s::text, ',' ORDER BY s::text)) FROM scoring.judging_step s "
    "UNION ALL SELECT 'score', count(*), md5(string_agg(s::text, ',' ORDER BY s::text)) FROM scoring.score s"
)


async def stored_state(app: Scoring) -> list[Any]:
    async with app.sessions() as session:
        return list((await session.execute(text(STATE))).all())


async def test_the_recompute_tool_compares_in_a_read_only_transaction(clean: Scoring) -> None:
    """``./sqi recompute`` stores nothing: what it judges with an older copy is printed, never kept
    (a second run compares afresh), so it needs no judging step."""
    app = clean
    events = dossier_events()
    await load_reference(app, NOW)
    await apply_batches(app, [events], NOW)
    await refresh_once(app, now=NOW)
    before = await stored_state(app)
    periods, diffs = await recompute_cli.compare_with_live(app, [PROCEDURE, *events], None)
    assert "2026-10" in periods and [str(d) for d in diffs] == []
    assert await stored_state(app) == before


async def test_the_recompute_tools_transaction_refuses_any_write(
    clean: Scoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the comparison ever to store what it judged, PostgreSQL would refuse it."""
    app = clean
    await load_reference(app, NOW)

    async def storing(session: AsyncSession, **_: Any) -> list[Any]:
        await session.execute(text("UPDATE scoring.dossier SET recheck_at = NULL"))
        return []

    monkeypatch.setattr(recompute_cli, "recompute_and_compare", storing)
    with pytest.raises(DBAPIError, match="read-only transaction"):
        await recompute_cli.compare_with_live(app, [PROCEDURE], "2026-10")
