"""The score announcement's figures, built straight from a stored row, validate into the contract
model that the row's fields make."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from services.scoring.application.scoring_service import announcements, methodology_figures
from shared.contracts.scoring import IndicatorFigures, MethodologyScore, ScoresUpdated

KEYS = ("id", "numerator", "denominator", "ratio", "points", "max_points", "applicable")
NOW = datetime(2026, 11, 5, 2, tzinfo=UTC)


def row(total: str = "53.21") -> dict[str, Any]:
    indicators: list[dict[str, Any]] = [
        {"id": "1.1", "numerator": None, "denominator": None, "ratio": None, "points": 6.0, "max_points": 6.0},
        {
            "id": "4.3",
            "numerator": 2.6666666666666665,
            "denominator": 4,
            "ratio": 66.67,
            "points": 5.92,
            "max_points": 6,
        },
        {"id": "2.1", "numerator": 2, "denominator": 4, "ratio": 50.0, "points": 10.0, "max_points": 20.0},
    ]
    for i in indicators:
        i["applicable"] = i["id"] != "1.1"
    stored = [[*(i[k] for k in KEYS), False] for i in indicators]  # breakdown.stored's arrays
    payload = {
        "unit_name": "Thuế tỉnh X",
        "level": "province",
        "parent_code": "CT",
        "methodology_version": 1,
        "groups": [["G1", 21.92, stored]],
    }
    return {
        "total": Decimal(total),
        "grade": "average",
        "rank": 3,
        "rank_delta": -1,
        "dossiers": 40,
        "provisional": False,
        "digest": total,
        "payload": payload,
    }


def test_built_figures_validate_into_the_model_of_the_fields() -> None:
    r = row()
    indicators = [dict(zip(KEYS, i, strict=False)) for g in r["payload"]["groups"] for i in g[2]]
    validated = MethodologyScore(
        total=r["total"],
        grade="average",
        rank=3,
        rank_delta=-1,
        dossiers=40,
        provisional=False,
        groups={"G1": 21.92},
        indicators=[IndicatorFigures(**{k: i[k] for k in KEYS}) for i in indicators],
        unit_name="Thuế tỉnh X",
        level="province",
        parent_code="CT",
    )
    built = MethodologyScore.model_validate_json(orjson.dumps(methodology_figures(r)))
    assert built == validated and built.model_dump_json() == validated.model_dump_json()


def test_changed_units_travel_in_messages_of_at_most_max_units() -> None:
    n = ScoresUpdated.MAX_UNITS * 2 + 3
    new = {"tax-2025": {f"U{k:03d}": row() for k in range(n)}}
    old = {"tax-2025": {"U000": row(), "U001": row("60.00")}}  # U000 unchanged, U001 moved
    bodies, crossings = announcements("2026-10", old, new, NOW)
    messages = [ScoresUpdated.model_validate_json(b) for b in bodies]
    assert [len(m.units) for m in messages] == [ScoresUpdated.MAX_UNITS, ScoresUpdated.MAX_UNITS, 2]
    codes = [u.unit_code for m in messages for u in m.units]
    assert codes == [f"U{k:03d}" for k in range(1, n)]  # every changed unit once, in order; U000 not
    assert all(m.period == "2026-10" and m.computed_at == NOW for m in messages)
    # U001 fell 6.79 points (60.00 → 53.21): a drop of ≥ 5 is its own event; the new units cross nothing.
    assert [(type(c).__name__, c.unit_code) for c in crossings] == [("ScoreDropped", "U001")]
