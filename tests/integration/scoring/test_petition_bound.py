"""A refresh reads only the petitions that can count in the period, and its scores still equal a
from-scratch evaluation that reads them all."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from services.scoring.adapters.tables import petition as petition_table
from services.scoring.application.recompute import recompute_and_compare
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_petition
from shared.calendar import VN_TZ
from shared.contracts.feedback import PetitionChanged

from .helpers import apply_batches, compute, load_reference
from .scenario import NOW, PROCEDURE, dossier_events

pytestmark = pytest.mark.integration


def petition(n: int, received: datetime, ended: datetime | None) -> PetitionChanged:
    due = received + timedelta(days=20)
    return PetitionChanged(
        petition_id=f"pt-{n}",
        version=1,
        change="answer" if ended else "receive",
        changed_at=ended or received,
        unit_code="P01",
        dossier_id=None,
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
