"""Ratings (đánh giá mức độ hài lòng): levels, criteria and which rating is current."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

LEVELS = ("very_satisfied", "satisfied", "dissatisfied")
# No rating older than the oldest dossier event SQI keeps (ingest refuses events before 2015): an
# earlier time is a typing or clock error, and one before year 1 in UTC cannot even be stored.
EARLIEST_RATING = datetime(2015, 1, 1, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
CRITERION_MIN = 1
CRITERION_MAX = 3


@dataclass(frozen=True)
class Criterion:
    criterion_id: str
    name_vi: str
    name_en: str


def load_criteria(path: Path) -> tuple[Criterion, ...]:
    """The rating criteria as data (reference/rating_criteria.csv), in file order."""
    with path.open(encoding="utf-8") as fh:
        return tuple(Criterion(r["criterion_id"], r["name_vi"], r["name_en"]) for r in csv.DictReader(fh))


def criteria_errors(criteria: Mapping[str, int], known: Mapping[str, Criterion]) -> list[dict[str, str]]:
    """Per-criterion problems as ``[{field, reason}]`` (empty when all is well)."""
    errors = []
    for cid, score in criteria.items():
        if cid not in known:
            errors.append({"field": f"criteria.{cid}", "reason": "unknown criterion"})
        elif not CRITERION_MIN <= score <= CRITERION_MAX:
            errors.append({"field": f"criteria.{cid}", "reason": f"must be {CRITERION_MIN}..{CRITERION_MAX}"})
    return errors


def becomes_current(new_rated_at: datetime, current_rated_at: datetime | None) -> bool:
    """The latest rating by time wins, so an import of an older rating never hides a newer one."""
    return current_rated_at is None or new_rated_at >= current_rated_at
