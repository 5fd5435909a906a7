"""A refresh reads only the petitions that can count in the period, and its scores still equal a
from-scratch evaluation that reads them all; a petition naming a dossier re-judges it (5.4)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from services.scoring.adapters.tables import dossier
from services.scoring.adapters.tables import petition as petition_table
from services.scoring.application.drilldown import shortfall_page
from services.scoring.application.recompute import live_periods, recompute_and_compare
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.domain import breakdown, parse_period
from services.scoring.domain.feedback import NAMED_IN_PETITION
from services.scoring.handlers.messages import apply_petition
from shared.calendar import VN_TZ
from shared.contracts.feedback import PetitionChanged

from .helpers import apply_batches, compute, load_reference, no_differences, score_table
from .scenario import NOW, PROCEDURE, dossier_events

pytestmark = pytest.mark.integration


def petition(
    n: int, received: datetime, ended: datetime | None, *, dossier_id: str | None = None, version: int = 1
) -> PetitionChanged:
    due = received + timedelta(days=20)
    return PetitionChanged(
        petition_id=f"pt-{n}",
        version=version,
        change="answer" if ended else "receive",
        changed_at=ended or received,
        unit_code="P01",
        dossier_id=dossier_id,
        category="thue-tncn",
        classification="tthc",
        status="answered" if ended else "received",
        received_at=received,
        clock_started_at=received,
        refuse_due_at=due,
        info_due_at=due,
        answer_due_at=due,
        publish_due_at=None,
        refused_at=None,
        info_requested_at=None,
        answered_at=ended,
        published_at=None,
        handled_on_time=True if ended else None,
        transfers=0,
        likes=0,
        dislikes=0,
        petitioned_again=False,
    )


async def test_petitions_ended_before_the_period_are_skipped_and_scores_stay_exact(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    events = dossier_events()
    await apply_batches(clean, [events], NOW)
    at = datetime(2026, 8, 3, 9, tzinfo=VN_TZ)
    petitions = [
        petition(1, at, at + timedelta(days=4)),  # ended in August: nowhere in October
        petition(2, datetime(2026, 9, 28, 9, tzinfo=VN_TZ), datetime(2026, 10, 6, 9, tzinfo=VN_TZ)),  # handled in it
        petition(3, datetime(2026, 9, 29, 9, tzinfo=VN_TZ), None),  # open since September
        petition(4, datetime(2026, 10, 2, 9, tzinfo=VN_TZ), datetime(2026, 10, 3, 9, tzinfo=VN_TZ)),  # received in it
    ]
    async with clean.uow() as uow:
        for p in petitions:
            await apply_petition(p, uow, now=NOW)
    await compute(clean, "2026-10", NOW)
    async with clean.sessions() as s:
        ended = dict((await s.execute(select(petition_table.c.petition_id, petition_table.c.ended_at))).all())
        diffs = await recompute_and_compare(
            s,
            events=[PROCEDURE, *events],
            periods=["2026-10"],
            methodologies=list(clean.methodologies.values()),
            calendar=clean.calendar,
        )
    assert ended["pt-1"] == petitions[0].answered_at and ended["pt-3"] is None
    assert diffs == []


async def test_a_petition_naming_a_dossier_rejudges_it(clean: Scoring) -> None:
    """B1 and B2 (P02, on time, handled in October) are satisfied until a petition received on
    20 October names B1; a later version names B2 instead: both are judged again from the
    earlier receipt, and October, its drill-down and the counters follow, equal to a recompute."""
    await load_reference(clean, NOW)
    events = dossier_events()
    await apply_batches(clean, [events], NOW)
    await refresh_once(clean, now=NOW)

    async def p02_54() -> tuple[float, int]:
        row = (await score_table(clean, "2026-10"))[("tax-2025", "P02")]
        ind = next(i for i in breakdown.indicator_figures(row["payload"]) if i["id"] == "5.4")
        return ind["numerator"], ind["denominator"]

    async def rechecks() -> dict[str, datetime | None]:
        async with clean.sessions() as s:
            rows = await s.execute(
                select(dossier.c.dossier_id, dossier.c.recheck_at).where(dossier.c.unit_code == "P02")
            )
            return {r[0]: r[1] for r in rows}

    async def shortfalls() -> list[tuple[str, str]]:
        async with clean.sessions() as s:
            items, _ = await shortfall_page(
                s,
                unit_code="P02",
                basis="5.4",
                period=parse_period("2026-10"),
                now=NOW,
                calendar=clean.calendar,
                procedures={},
                offset=0,
                limit=10,
            )
        return [(i["dossier_id"], i["reason"]) for i in items]

    async def exact() -> None:
        await no_differences(clean, events)

    assert await p02_54() == (2, 2)
    received = datetime(2026, 10, 20, 9, tzinfo=VN_TZ)
    async with clean.uow() as uow:
        await apply_petition(petition(9, received, None, dossier_id="B1"), uow, now=NOW)
    assert (await rechecks())["B1"] == received
    await refresh_once(clean, now=NOW)
    assert await p02_54() == (1, 2)
    assert await shortfalls() == [("B1", NAMED_IN_PETITION)]
    await exact()

    async with clean.uow() as uow:
        await apply_petition(petition(9, received, None, dossier_id="B2", version=2), uow, now=NOW)
    assert set((await rechecks()).values()) == {received}  # the dossier named before, and now
    await refresh_once(clean, now=NOW)
    assert await p02_54() == (1, 2)
    assert await shortfalls() == [("B2", NAMED_IN_PETITION)]
    await exact()


async def test_a_version_that_moves_the_receipt_leaves_the_months_it_counted_in(clean: Scoring) -> None:
    """Received 15 September, then a later version says 2 October: September (5.1–5.3) no longer
    counts it once refreshed, as a recompute of every stored period says."""
    await load_reference(clean, NOW)
    events = dossier_events()
    await apply_batches(clean, [events], NOW)
    async with clean.uow() as uow:
        await apply_petition(petition(7, datetime(2026, 9, 15, 9, tzinfo=VN_TZ), None), uow, now=NOW)
    await refresh_once(clean, now=NOW)
    moved = petition(7, datetime(2026, 10, 2, 9, tzinfo=VN_TZ), None, version=2)
    async with clean.uow() as uow:
        await apply_petition(moved, uow, now=NOW)
    await refresh_once(clean, now=NOW)
    async with clean.sessions() as s:
        assert "2026-09" in await live_periods(s)
    await no_differences(clean, events)
