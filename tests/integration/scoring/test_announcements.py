"""What scoring announces: each changed unit once per refresh of a period, thresholds on their own."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import delete, select

from services.scoring.adapters.tables import outbox
from services.scoring.bootstrap import Scoring
from shared.contracts.scoring import GradeChanged, ScoreDropped, ScoresUpdated, UnitScores

from .helpers import apply_batches, compute, load_reference
from .scenario import NOW, _ev, _received, dossier_events

pytestmark = pytest.mark.integration


async def published(app: Scoring) -> list[tuple[str, dict]]:
    async with app.sessions() as s:
        rows = (await s.execute(select(outbox.c.routing_key, outbox.c.body).order_by(outbox.c.created_at))).all()
    return [(r.routing_key, orjson.loads(r.body)) for r in rows]


def updated_units(messages: list[tuple[str, dict]]) -> list[UnitScores]:
    return [u for k, b in messages if k == ScoresUpdated.routing_key for u in ScoresUpdated.model_validate(b).units]


async def test_updates_per_unit_and_thresholds(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    await compute(clean, "2026-10", NOW)
    first = await published(clean)
    updates = updated_units(first)
    assert sorted(u.unit_code for u in updates) == ["CT", "P01", "P02"]  # each unit once, all methodologies
    assert set(updates[0].scores) == {"tax-2025", "portal-766"}
    assert len([k for k, _ in first if k == ScoresUpdated.routing_key]) == 1  # a few units: one message
    # Everything a reporting read model needs to draw a ranking row and a unit page.
    p01 = next(u for u in updates if u.unit_code == "P01").scores["tax-2025"]
    assert (p01.unit_name, p01.level, p01.parent_code) == ("Thuế Thành phố Hà Nội", "province", "CT")
    assert p01.provisional is True and p01.rank is None and p01.rank_delta is None
    assert set(p01.groups) == {"G1", "G2", "G3", "G4", "G5"} and sum(p01.groups.values()) == p01.total
    on_time = next(i for i in p01.indicators if i.id == "2.1")
    assert (on_time.numerator, on_time.denominator, float(on_time.points), on_time.applicable) == (2, 4, 10.0, True)
    assert float(on_time.max_points) == 20.0 and float(on_time.ratio or 0) == 50.0
    assert not [k for k, _ in first if k != ScoresUpdated.routing_key]  # a first computation crosses nothing

    async with clean.uow() as uow:
        await uow.session.execute(delete(outbox))
    # P02 gets a dossier left open and overdue, offline and never synced: 90 → well below.
    await apply_batches(
        clean, [[_received(5, "B3", "P02", "counter"), _ev("paid", 5, "B3", amount_vnd=1, channel="counter")]], NOW
    )
    await compute(clean, "2026-10", NOW)
    second = await published(clean)
    assert {u.unit_code for u in updated_units(second)} == {"CT", "P02"}
    drops = [b for k, b in second if k == ScoreDropped.routing_key]
    assert {(b["unit_code"], b["methodology"]) for b in drops} >= {("P02", "tax-2025"), ("P02", "portal-766")}
    assert all(float(b["previous_total"]) - float(b["total"]) >= 5 for b in drops)
    grades = [b for k, b in second if k == GradeChanged.routing_key and b["unit_code"] == "P02"]
    assert grades and grades[0]["previous_grade"] == "excellent"

    async with clean.uow() as uow:
        await uow.session.execute(delete(outbox))
    await compute(clean, "2026-10", NOW)
    assert await published(clean) == []  # nothing changed: nothing announced
