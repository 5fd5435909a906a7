"""The score event's figures, built without validation, equal the validated contract model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.scoring.application.scoring_service import methodology_score
from shared.contracts.scoring import IndicatorFigures, MethodologyScore, ScoreUpdated

KEYS = ("id", "numerator", "denominator", "ratio", "points", "max_points", "applicable")


def test_constructed_figures_equal_validated_ones() -> None:
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
    payload = {
        "unit_name": "Thuế tỉnh X",
        "level": "province",
        "parent_code": "CT",
        "groups": [{"id": "G1", "points": 21.92, "indicators": indicators}],
    }
    row = {
        "total": Decimal("53.21"),
        "grade": "average",
        "rank": 3,
        "rank_delta": -1,
        "dossiers": 40,
        "provisional": False,
        "payload": payload,
    }
    validated = MethodologyScore(
        total=row["total"],
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
    built = methodology_score(row)
    assert built == validated and built.model_dump_json() == validated.model_dump_json()
    body = ScoreUpdated(
        period="2026-10", unit_code="P01", scores={"tax-2025": built}, computed_at="2026-11-05T02:00:00Z"
    )
    assert ScoreUpdated.model_validate_json(body.model_dump_json()).scores["tax-2025"] == validated
