"""A closed period keeps the ratings it was judged with: scoring keeps every rating.

5.4 counts, per dossier, the latest rating given before the period's judging instant. Through the
real handlers and refresher (incremental: a rating flags its dossier for judging from the rating's
instant, its verdicts carry the feedback exception and the counters move with them), checked
against the recompute path (every dossier judged by the domain from scratch):

* F1, received 24 Feb and completed 2 Mar (handled in February and in March), rated dissatisfied
  on 27 Feb and satisfied on 12 Mar: February counts the dissatisfied rating, March does not.
* F2, handled in February, rated satisfied on 15 Mar; then the portal's older rating of 20 Feb
  (dissatisfied) arrives: it is not the current one, yet it counts for February.
* F3, handled in March, rated twice at the same instant: judging and recompute pick the same one.
* satisfied → dissatisfied → satisfied again; a rating before the dossier's events arrive; a
  rating dated after the judging instant (the dossier is judged again at that instant); the
  running month sees a newer rating than the closed month.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from services.scoring.adapters.repository import load_procedures
from services.scoring.adapters.tables import EPOCH, dirty_period, dossier, dossier_flag, rating
from services.scoring.application.judging import judge_due
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.domain import breakdown
from services.scoring.handlers.messages import apply_rating
from shared.calendar import VN_TZ
from shared.contracts import RawEvent
from shared.contracts.feedback import RatingLevel, RatingSubmitted

from . import helpers
from .helpers import apply_batches, compute, load_reference, score_table

pytestmark = pytest.mark.integration

NOW = datetime(2026, 4, 6, 9, 0, tzinfo=VN_TZ)  # February, March and Q1 closed
_ids = itertools.count(1)


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=VN_TZ)


def handled(dossier_id: str, received: datetime, completed: datetime) -> list[RawEvent]:
    def ev(kind: str, t: datetime, **data: Any) -> RawEvent:
        return RawEvent(
            source="tms",
            event_id=f"{dossier_id}-{kind}-{next(_ids)}",
            type=f"dossier.{kind}",
            occurred_at=t.isoformat(),
            data={"dossier_id": dossier_id, **data},
        )

    return [
        ev("received", received, unit_code="P01", procedure_code="TAX1", channel="counter", officer_id="P01-o1"),
        ev("completed", completed, outcome="approved", result_digitized=True, officer_id="P01-o2"),
    ]


EVENTS = [
    *handled("F1", at(2, 24), at(3, 2)),
    *handled("F2", at(2, 5), at(2, 6)),
    *handled("F3", at(3, 9), at(3, 10)),
]


def rated(rating_id: str, dossier_id: str, level: RatingLevel, t: datetime, *, current: bool = True) -> RatingSubmitted:
    return RatingSubmitted(
        rating_id=rating_id,
        dossier_id=dossier_id,
        unit_code="P01",
        level=level,
        criteria={"conduct": 2},
        origin="citizen" if current else "national_portal",
        rated_at=t,
        replaced=False,
        current=current,
    )


async def receive(app: Scoring, msg: RatingSubmitted, now: datetime = NOW) -> None:
    async with app.uow() as uow:
        await apply_rating(msg, uow, now=now)


async def recheck_at(app: Scoring, dossier_id: str) -> datetime | None:
    async with app.sessions() as s:
        return await s.scalar(select(dossier.c.recheck_at).where(dossier.c.dossier_id == dossier_id))


async def judged_dirty(app: Scoring, now: datetime = NOW) -> set[str]:
    """Judge every due dossier; the periods whose verdicts changed (marked dirty by judging)."""
    async with app.uow() as uow:
        await judge_due(uow.session, now=now, calendar=app.calendar, procedures=await load_procedures(uow.session))
    return await dirty(app)


async def satisfied(app: Scoring, label: str) -> tuple[float, int]:
    """P01's 5.4 (numerator, denominator) as stored in the read model."""
    row = (await score_table(app, label))[("tax-2025", "P01")]
    ind = next(i for i in breakdown.indicator_figures(row["payload"]) if i["id"] == "5.4")
    return ind["numerator"], ind["denominator"]


async def dirty(app: Scoring) -> set[str]:
    async with app.sessions() as s:
        return set((await s.execute(select(dirty_period.c.period))).scalars())


async def no_differences(app: Scoring, events: list[RawEvent] = EVENTS) -> None:
    """No drift, and every stored period equal to a recompute (of this file's events by default)."""
    await helpers.no_differences(app, events)


async def test_a_closed_period_keeps_the_rating_it_was_judged_with(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [EVENTS], NOW)
    await receive(clean, rated("r1", "F1", "dissatisfied", at(2, 27)))
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-02") == (1, 2)  # F2 satisfied, F1 rated dissatisfied
    assert await satisfied(clean, "2026-03") == (1, 2)  # F1's latest rating before March's end

    # Re-rated satisfied in March: F1 is judged again from 12 March (not the epoch: its facts
    # did not change), and only its periods judged after then change — not February.
    assert await dirty(clean) == set()
    await receive(clean, rated("r2", "F1", "satisfied", at(3, 12)))
    assert await recheck_at(clean, "F1") == at(3, 12)
    assert await judged_dirty(clean) == {"2026-03", "2026-Q1", "2026"}
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-03") == (2, 2)
    assert await satisfied(clean, "2026-Q1") == (3, 3)
    # February recomputed from scratch (a late dossier event would do the same): unchanged.
    await compute(clean, "2026-02", NOW)
    assert await satisfied(clean, "2026-02") == (1, 2)
    async with clean.sessions() as s:
        kept = (await s.execute(select(rating.c.rating_id).where(rating.c.dossier_id == "F1"))).scalars()
        assert sorted(kept) == ["r1", "r2"]
    await no_differences(clean)


async def test_an_imported_older_rating_counts_for_its_own_period(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [EVENTS], NOW)
    await receive(clean, rated("r3", "F2", "satisfied", at(3, 15)))
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-02") == (2, 2)
    # The portal's February rating arrives after the current one: history only at feedback,
    # yet February (and every period judged after it was given) counts it.
    older = rated("r4", "F2", "dissatisfied", at(2, 20), current=False)
    await receive(clean, older)
    assert await judged_dirty(clean) == {"2026-02"}  # Q1 and the year: F2's latest is still r3
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-02") == (1, 2)
    assert await satisfied(clean, "2026-Q1") == (3, 3)  # F2's latest before April is satisfied
    # A redelivery changes nothing and flags nothing.
    await receive(clean, older)
    assert await recheck_at(clean, "F2") is None and await dirty(clean) == set()
    async with clean.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(rating).where(rating.c.dossier_id == "F2")) == 2
    # Two ratings at one instant: judging picks what the domain's latest_rating picks.
    await receive(clean, rated("r5", "F3", "dissatisfied", at(3, 20)))
    await receive(clean, rated("r6", "F3", "satisfied", at(3, 20)))
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-03") == (2, 2)  # (rated_at, level) ties: the greater level
    await no_differences(clean)


async def test_satisfied_dissatisfied_satisfied_again(clean: Scoring) -> None:
    """F3 (handled 9–10 March) rated satisfied, then dissatisfied, then satisfied again, each time
    judged and refreshed: the counters follow, and equal a recompute at every step."""
    await load_reference(clean, NOW)
    await apply_batches(clean, [EVENTS], NOW)
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-03") == (2, 2)
    steps: tuple[tuple[str, RatingLevel, int, tuple[int, int]], ...] = (
        ("s1", "satisfied", 11, (2, 2)),
        ("s2", "dissatisfied", 12, (1, 2)),
        ("s3", "satisfied", 13, (2, 2)),
    )
    for rating_id, level, day, expected in steps:
        await receive(clean, rated(rating_id, "F3", level, at(3, day)))
        await refresh_once(clean, now=NOW)
        assert await satisfied(clean, "2026-03") == expected, rating_id
        await no_differences(clean)


async def test_the_running_month_sees_the_newer_rating(clean: Scoring) -> None:
    """F4 received 31 March, completed 1 April (on time): handled in March (closed) and April
    (running). Rated dissatisfied on 31 March and satisfied on 3 April: March keeps the
    dissatisfied rating, April and the year count the newer one."""
    events = [*EVENTS, *handled("F4", at(3, 31), at(4, 1))]
    await load_reference(clean, NOW)
    await apply_batches(clean, [events], NOW)
    await receive(clean, rated("n1", "F4", "dissatisfied", at(3, 31, 15)))
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-03") == (2, 3)
    assert await satisfied(clean, "2026-04") == (0, 1)
    await receive(clean, rated("n2", "F4", "satisfied", at(4, 3)))
    assert await judged_dirty(clean) == {"2026-04", "2026-Q2", "2026"}  # not March, not Q1
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-03") == (2, 3)
    assert await satisfied(clean, "2026-04") == (1, 1)
    await no_differences(clean, events)


async def test_a_rating_before_the_dossier_and_a_future_dated_rating(clean: Scoring) -> None:
    """A rating of a dossier scoring has no row for yet flags it (its first events may be
    committing and be judged before the rating commits), and judging it before its events arrive
    counts nothing; a rating dated after the judging instant is judged at its time."""
    await load_reference(clean, NOW)
    await receive(clean, rated("e1", "F1", "dissatisfied", at(2, 27)))
    assert await recheck_at(clean, "F1") is None  # not due by time: the flag has it judged
    async with clean.sessions() as s:
        assert (await s.execute(select(dossier_flag.c.dossier_id))).scalars().all() == ["F1"]
    await judged_dirty(clean)
    async with clean.sessions() as s:
        assert (await s.execute(select(dossier.c.dossier_id, dossier.c.facts))).all() == [("F1", None)]
        assert await s.scalar(select(func.count()).select_from(dossier_flag)) == 0
    await apply_batches(clean, [EVENTS], NOW)
    await refresh_once(clean, now=NOW)
    assert await satisfied(clean, "2026-02") == (1, 2)  # the early rating counted at first judging
    await no_differences(clean)

    # Rated dissatisfied "tomorrow" (a clock ahead, or a dated import): nothing changes now, F2
    # is due at that instant, and judged then the running year counts it.
    tomorrow = datetime(2026, 4, 7, 9, 0, tzinfo=VN_TZ)
    await receive(clean, rated("e2", "F2", "dissatisfied", tomorrow))
    assert await recheck_at(clean, "F2") == tomorrow
    assert await judged_dirty(clean) == set()
    later = datetime(2026, 4, 7, 10, 0, tzinfo=VN_TZ)
    assert await judged_dirty(clean, later) == {"2026"}  # Feb and Q1 were judged at their ends
    async with clean.sessions() as s:
        assert (await s.scalar(select(dossier.c.recheck_at).where(dossier.c.dossier_id == "F2"))) != EPOCH
