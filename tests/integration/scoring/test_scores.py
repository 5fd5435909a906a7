"""Scores of a scripted month in both methodologies; independence from order and duplicates.

Hand-worked (TAX1: fee, online, 5 working days; P01 handles A1–A4, P02 B1–B2, CT the union):
P01 tax-2025: 1.4 synced 3/4 → 6×75/100 = 4.50; 2.1 on time 2/4 (A2 late, A4 overdue at
month end) → 10.00; 3.1 electronic results 2/4 → 3.00; 4.6 paid online 2/4 → 3.00; with
G1 0+0+2+4.50, G3 3+1.50+0.63+1+0+0, G4 2+4+2.25+2+2+3, G5 0+6+6+3.33 → 53.21.
P02: everything at maximum except 1.1/1.2 (no decision in October: no data) → 90.00.
CT (6 dossiers): 1.4 5/6 → 5.00; 2.1 4/6 → 13.33; 3.1 4/6 → 4.00; 4.6 r2(66.67%) → 4.00;
G3 4+3+1.25+2+0.67+2, G4 2+4+5+2+2+4, G5 6+6+4.44 → 68.69.
portal-766 adds the constant 2 for certified copies and has 3.2 out of 4 (P01 1.00, CT 2.00).
"""

from __future__ import annotations

import random

import pytest

from services.scoring.bootstrap import Scoring
from services.scoring.domain import breakdown

from .helpers import apply_batches, compute, load_reference, score_table
from .scenario import EXPECTED, NOW, dossier_events

pytestmark = pytest.mark.integration


def _points(payload: dict, indicator_id: str) -> float:
    for i in breakdown.indicator_figures(payload):
        if i["id"] == indicator_id:
            return float(i["points"])
    raise KeyError(indicator_id)


async def test_scripted_month_both_methodologies(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    changed = await compute(clean, "2026-10", NOW)
    assert changed["tax-2025"] == ["CT", "P01", "P02"]
    rows = await score_table(clean, "2026-10")
    for methodology, units in EXPECTED.items():
        for unit_code, expected in units.items():
            row = rows[(methodology, unit_code)]
            for key, value in expected.items():
                got = float(row["total"]) if key == "total" else _points(row["payload"], key)
                assert got == pytest.approx(value, abs=1e-9), (methodology, unit_code, key)
    p01, p02 = rows[("tax-2025", "P01")], rows[("tax-2025", "P02")]
    # Too few dossiers (< 30) everywhere: provisional, so not ranked (xếp hạng tạm).
    assert (p01["rank"], p02["rank"], rows[("tax-2025", "CT")]["rank"]) == (None, None, None)
    assert p01["dossiers"] == 4 and p01["provisional"] is True
    assert p02["grade"] == "excellent" and p01["grade"] == "average"
    # Recomputing with nothing new changes nothing and announces nothing.
    assert await compute(clean, "2026-10", NOW) == {"tax-2025": [], "portal-766": []}


async def test_order_and_duplicates_do_not_matter(clean: Scoring) -> None:
    events = dossier_events()
    await load_reference(clean, NOW)
    await apply_batches(clean, [events], NOW)
    await compute(clean, "2026-10", NOW)
    expected = await score_table(clean, "2026-10")

    await clean_again(clean)
    rng = random.Random(7)
    shuffled = events + rng.sample(events, 10)
    rng.shuffle(shuffled)
    batches = [shuffled[i : i + 4] for i in range(0, len(shuffled), 4)]
    await apply_batches(clean, batches, NOW)
    await load_reference(clean, NOW)  # catalogue and units after the dossiers this time
    await apply_batches(clean, [events[::-1]], NOW)
    await compute(clean, "2026-10", NOW)
    assert await score_table(clean, "2026-10") == expected


async def clean_again(app: Scoring) -> None:
    from sqlalchemy import text

    from .conftest import TABLES

    async with app.uow() as uow:
        await uow.session.execute(text("TRUNCATE " + ", ".join(f"scoring.{t}" for t in TABLES)))
