"""Rating criteria come from the reference data; the latest rating by time is current."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.feedback.domain.categories import CATEGORIES, classification
from services.feedback.domain.ratings import becomes_current, criteria_errors, load_criteria
from shared.unit_tree import covers, subtree

CSV = Path(__file__).resolve().parents[3] / "data" / "reference" / "rating_criteria.csv"


def test_criteria_loaded_from_csv() -> None:
    criteria = {c.criterion_id: c for c in load_criteria(CSV)}
    assert "conduct" in criteria and criteria["conduct"].name_vi.startswith("Thái độ")
    assert criteria_errors({"conduct": 3}, criteria) == []
    assert criteria_errors({"nope": 2, "conduct": 4}, criteria) == [
        {"field": "criteria.nope", "reason": "unknown criterion"},
        {"field": "criteria.conduct", "reason": "must be 1..3"},
    ]


def test_latest_rating_wins() -> None:
    a, b = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC)
    assert becomes_current(b, a) and becomes_current(a, None) and not becomes_current(a, b)


def test_categories_classified_for_indicator_5_1() -> None:
    assert {c.classification for c in CATEGORIES} == {"tthc", "staff", "other"}
    assert classification("staff_conduct") == "staff" and classification("procedure") == "tthc"


def test_unit_cover_and_subtree() -> None:
    parents = {"CT": None, "P01": "CT", "L0101": "P01", "P02": "CT"}
    assert covers(parents, ["P01"], "L0101") and not covers(parents, ["P02"], "L0101")
    assert subtree(parents, "P01") == {"P01", "L0101"}
