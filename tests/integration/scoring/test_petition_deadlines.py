"""A petition's deadline passing is a change of 5.2 and 5.3 that no event announces.

methodology.md, G5: 5.2 = petitions answered (or refused) within their deadline + open ones not
yet due / petitions handled in the period; 5.3 = petitions first received in the period minus
those overdue …; the answer deadline is 15 working days from receipt. A closed period is judged
at its end (an open item is "judged at the period's end").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.scoring.adapters.dirty_periods import mark_periods_past_petition_deadlines
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.domain import breakdown
from services.scoring.handlers.messages import apply_petition
from shared.calendar import VN_TZ

from .helpers import load_reference, no_differences, score_table
from .scenario import NOW
from .test_petition_bound import petition

pytestmark = pytest.mark.integration

# Thursday 1 October 2026, 09:00; the petition's deadlines, as its message carries them, are 20
# days later (``test_petition_bound.petition``): 21 October, so an unanswered petition is overdue
# at the end of October.
RECEIVED = datetime(2026, 10, 1, 9, tzinfo=VN_TZ)
# The only refresh inside October: the petition is open and not yet due.
EARLY = datetime(2026, 10, 5, 9, tzinfo=VN_TZ)


def figures(row: dict[str, Any], indicator: str) -> dict[str, Any]:
    return next(i for i in breakdown.indicator_figures(row["payload"]) if i["id"] == indicator)


async def test_an_open_petition_overdue_by_the_end_of_a_closed_month_costs_52_and_53(clean: Scoring) -> None:
    await load_reference(clean, EARLY)
    async with clean.uow() as uow:
        await apply_petition(petition(1, RECEIVED, None), uow, now=EARLY)
    await refresh_once(clean, now=EARLY)  # October running: open, not yet due, 5.2 = 1 / 1
    # November: October is closed and judged at its end, when the petition was 9 days overdue.
    await refresh_once(clean, now=NOW)
    row = (await score_table(clean, "2026-10"))[("tax-2025", "P01")]
    on_time, satisfied = figures(row, "5.2"), figures(row, "5.3")
    # Spec: 0 / 1 on both (overdue and unanswered at the period's end) → 0 points each, not 6.
    assert (on_time["numerator"], on_time["denominator"]) == (0, 1)
    assert Decimal(str(on_time["points"])) == Decimal("0.00")
    assert (satisfied["numerator"], satisfied["denominator"]) == (0, 1)
    assert Decimal(str(satisfied["points"])) == Decimal("0.00")
    # The live figures must also equal a from-scratch recompute of every stored period.
    await no_differences(clean, [])


async def test_a_deadline_passing_inside_the_running_month_marks_it_for_the_next_refresh(clean: Scoring) -> None:
    await load_reference(clean, EARLY)
    async with clean.uow() as uow:
        await apply_petition(petition(1, RECEIVED, None), uow, now=EARLY)
    await refresh_once(clean, now=EARLY)
    before_due = RECEIVED + timedelta(days=19)
    async with clean.uow() as uow:  # nothing fell due since the refresh: nothing to do
        assert await mark_periods_past_petition_deadlines(uow.session, before_due) == []
    after_due = RECEIVED + timedelta(days=22)  # 23 October: the answer was due two days before
    async with clean.uow() as uow:
        marked = await mark_periods_past_petition_deadlines(uow.session, after_due)
    assert sorted(marked) == ["2026", "2026-10", "2026-Q4"]
    await refresh_once(clean, now=after_due)
    row = (await score_table(clean, "2026-10"))[("tax-2025", "P01")]
    assert (figures(row, "5.2")["numerator"], figures(row, "5.2")["denominator"]) == (0, 1)
    async with clean.uow() as uow:  # computed since: not marked again
        assert await mark_periods_past_petition_deadlines(uow.session, after_due) == []
