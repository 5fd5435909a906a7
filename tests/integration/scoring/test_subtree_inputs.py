"""A unit's points at stake judge its subtree with inputs read by key: the subtree's ratings and
the petitions naming its dossiers, plus the petitions that can count in the period — the same
verdicts and counts as from every rating and petition of the history."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.scoring.adapters.repository import load_inputs, load_subtree_inputs
from services.scoring.application.drilldown import subtree_dossier_ids
from services.scoring.bootstrap import Scoring
from services.scoring.domain import parse_period
from services.scoring.domain.engine import evaluate_period
from services.scoring.handlers.messages import apply_petition, apply_rating
from shared.calendar import VN_TZ
from shared.contracts.feedback import RatingSubmitted

from .helpers import apply_batches, compute, load_reference
from .scenario import NOW, dossier_events
from .test_petition_bound import petition

pytestmark = pytest.mark.integration


def rated(n: int, dossier_id: str, unit: str, level: str, day: int) -> RatingSubmitted:
    return RatingSubmitted(
        rating_id=f"r-{n}",
        dossier_id=dossier_id,
        unit_code=unit,
        level=level,  # type: ignore[arg-type]
        criteria={"conduct": 2},
        origin="citizen",
        rated_at=datetime(2026, 10, day, 9, tzinfo=VN_TZ),
        replaced=False,
        current=True,
    )


async def test_subtree_inputs_judge_as_every_input_does(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    async with clean.uow() as uow:
        await apply_rating(rated(1, "B1", "P02", "dissatisfied", 20), uow, now=NOW)
        await apply_rating(rated(2, "A1", "P01", "dissatisfied", 21), uow, now=NOW)
        await apply_petition(petition(1, datetime(2026, 9, 2, 9, tzinfo=VN_TZ), None, dossier_id="B2"), uow, now=NOW)
        ended_in_august = datetime(2026, 8, 9, 9, tzinfo=VN_TZ)
        await apply_petition(petition(2, datetime(2026, 8, 3, 9, tzinfo=VN_TZ), ended_in_august), uow, now=NOW)
        await apply_petition(petition(3, datetime(2026, 10, 2, 9, tzinfo=VN_TZ), None), uow, now=NOW)
    await compute(clean, "2026-10", NOW)
    october = parse_period("2026-10")
    async with clean.sessions() as s:
        ids = await subtree_dossier_ids(s, "P02", october)
        subtree = await load_subtree_inputs(s, october, ids)
        every = await load_inputs(s, october)
    assert sorted(ids) == ["B1", "B2"]
    assert {r.dossier_id for r in subtree.ratings} == {"B1"}  # A1's rating is not read
    # Countable in October (pt-3; pt-1, open since September, also names B2); not pt-2.
    assert sorted(p.petition_id for p in subtree.petitions) == ["pt-1", "pt-3"]
    mine = evaluate_period(subtree, october, NOW, clean.calendar)
    full = evaluate_period(every, october, NOW, clean.calendar)
    assert mine.counts["P02"] == full.counts["P02"]
    assert mine.counts["P02"]["5.4"].numerator == 0  # B1 rated dissatisfied, B2 named in a petition
    # A national subtree: more dossiers than a statement may have parameters (65,535 for asyncpg),
    # so every read by id is one array parameter.
    async with clean.sessions() as s:
        many = await load_subtree_inputs(s, october, [*ids, *(f"X{i}" for i in range(70_000))])
    assert {r.dossier_id for r in many.ratings} == {"B1"} and len(many.facts) == 2
