"""Integration events of the scoring service (exchange ``scoring.events``)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from shared.contracts import IntegrationEvent


class ScoreUpdated(IntegrationEvent):
    """Scores (điểm) of a period under one methodology were recomputed; ``units`` changed."""

    routing_key: ClassVar[str] = "scoring.score-updated.v1"

    period: str
    methodology: str
    units: list[str]
    computed_at: datetime
