"""Recompute from the raw events agrees with the live read model, and finds a missing event."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.scoring.application.recompute import recompute_and_compare
from services.scoring.bootstrap import Scoring
from services.scoring.domain import breakdown
from services.scoring.handlers.messages import apply_rating
from shared.calendar import VN_TZ
from shared.contracts.feedback import RatingSubmitted

from .helpers import apply_batches, compute, load_reference, score_table
from .scenario import NOW, PROCEDURE, dossier_events

pytestmark = pytest.mark.integration


async def test_recompute_matches_then_finds_differences(clean: Scoring) -> None:
    events = dossier_events()
    await load_reference(clean, NOW)
    await apply_batches(clean, [events], NOW)
    await compute(clean, "2026-10", NOW)
    methodologies = list(clean.methodologies.values())
    async with clean.sessions() as s:
        same = await recompute_and_compare(
            s,
            events=[PROCEDURE, *events],
            periods=["2026-10"],
            methodologies=methodologies,
            calendar=clean.calendar,
        )
        assert same == []
        missing_sync = [e for e in events if not (e.data["dossier_id"] == "A1" and e.type == "dossier.synced")]
        diffs = await recompute_and_compare(
            s,
            events=[PROCEDURE, *missing_sync],
            periods=["2026-10"],
            methodologies=methodologies,
            calendar=clean.calendar,
        )
    keys = {(d.methodology, d.unit_code, d.indicator) for d in diffs}
    assert ("tax-2025", "P01", "1.4") in keys and ("tax-2025", "CT", "1.4") in keys
    assert not any(d.unit_code == "P02" for d in diffs)


async def test_dissatisfied_rating_costs_5_4(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    async with clean.uow() as uow:
        await apply_rating(
            RatingSubmitted(
                rating_id="r1",
                dossier_id="B1",
                unit_code="P02",
                level="dissatisfied",
                criteria={},
                origin="citizen",
                rated_at=datetime(2026, 10, 20, 10, tzinfo=VN_TZ),
                replaced=False,
            ),
            uow,
            now=NOW,
        )
    await compute(clean, "2026-10", NOW)
    row = (await score_table(clean, "2026-10"))[("tax-2025", "P02")]
    ind = next(i for i in breakdown.indicator_figures(row["payload"]) if i["id"] == "5.4")
    # 1/2 satisfied = 50 % against a threshold of 90 → 6 × 50 / 90 = 3.33.
    assert (ind["numerator"], ind["denominator"], ind["points"]) == (1, 2, 3.33)
