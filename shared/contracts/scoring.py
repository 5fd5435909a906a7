"""Integration events of the scoring service (exchange ``scoring.events``).

Coalesced: the refresher recomputes a period at most once a second, so each (unit, period)
gets at most one ``score-updated`` per second, however many events changed it. Crossing a
threshold is announced as its own event, beside the update.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from shared.contracts import IntegrationEvent


class MethodologyScore(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    total: Decimal
    grade: str
    rank: int | None
    dossiers: int


class ScoreUpdated(IntegrationEvent):
    """A unit's score (điểm) for a period changed; one event covers every methodology.

    v2: one event per (unit, period) — v1 carried a list of units per methodology.
    """

    routing_key: ClassVar[str] = "scoring.score-updated.v2"

    period: str
    unit_code: str
    scores: dict[str, MethodologyScore]  # methodology id → the new figures
    computed_at: datetime


class GradeChanged(IntegrationEvent):
    """A unit's grade (xếp loại) for a period differs from the previous computation's."""

    routing_key: ClassVar[str] = "scoring.grade-changed.v1"

    period: str
    methodology: str
    unit_code: str
    previous_grade: str
    grade: str
    total: Decimal
    computed_at: datetime


class ScoreDropped(IntegrationEvent):
    """A unit's total for a period fell by at least ``DROP_POINTS`` since the previous computation."""

    routing_key: ClassVar[str] = "scoring.score-dropped.v1"
    DROP_POINTS: ClassVar[Decimal] = Decimal(5)

    period: str
    methodology: str
    unit_code: str
    previous_total: Decimal
    total: Decimal
    computed_at: datetime
