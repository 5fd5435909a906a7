"""Integration events of the scoring service (exchange ``scoring.events``).

Coalesced: the refresher recomputes a period at most once per tick (``SQI_SCORING_REFRESH_SECONDS``,
0.25 s by default), so each (unit, period) is in at most one ``scores-updated`` per tick, however
many events changed it. Crossing a threshold is announced as its own event, beside the update.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import IntegrationEvent

# A methodology id (mã bộ chỉ số), as scoring takes one on upload and reporting in a query: safe in
# a URL path and in an export's file name header. ``$`` is the end of the text for pydantic's
# regex; Python's ``re`` needs ``fullmatch``.
METHODOLOGY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"

# Period labels (kỳ): month ``2026-10``, quarter ``2026-Q3``, year ``2026``, custom range
# ``2026-10-01..2026-10-15``. ``[0-9]``, never ``\d``: Python's ``\d`` also takes Arabic-Indic,
# full-width and other Unicode digits (``٢٠٢٦-١٠`` was read as 2026-10). Match them whole
# (``fullmatch``; ``$`` ends the text only for pydantic's regex). Groups: the numbers (range: days).
PERIOD_MONTH_PATTERN = r"^([0-9]{4})-([0-9]{2})$"
PERIOD_QUARTER_PATTERN = r"^([0-9]{4})-[Qq]([1-4])$"
PERIOD_YEAR_PATTERN = r"^([0-9]{4})$"
PERIOD_RANGE_PATTERN = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})\.\.([0-9]{4}-[0-9]{2}-[0-9]{2})$"


class IndicatorFigures(BaseModel):
    """One indicator (chỉ số) of a unit's score: the figures a ranking or unit page draws."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    numerator: float | None = None  # 4.3's numerator is a product with the sync rate: not whole
    denominator: int | None = None
    ratio: Decimal | None = None  # r2(100 × n / d), None without data
    points: Decimal
    max_points: Decimal
    applicable: bool = True


class MethodologyScore(BaseModel):
    """A unit's figures under one methodology (bộ chỉ số).

    ``rank`` and ``rank_delta`` are None for a provisional unit (too few dossiers to rank
    fairly). The fields after ``dossiers`` were added later (optional, with defaults): a
    reporting read model can draw a ranking and a unit page from them without calling scoring.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    total: Decimal
    grade: str
    rank: int | None
    dossiers: int
    rank_delta: int | None = None
    provisional: bool = False
    groups: dict[str, Decimal] = Field(default_factory=dict)  # group id → points
    indicators: list[IndicatorFigures] = Field(default_factory=list)
    unit_name: str | None = None
    level: str | None = None  # central / province / local
    parent_code: str | None = None


class UnitScores(BaseModel):
    """One unit's new figures for a period, every methodology (methodology id → figures)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    unit_code: str
    scores: dict[str, MethodologyScore]


class ScoresUpdated(IntegrationEvent):
    """The scores (điểm) of some units for a period changed: one refresh's changed units, in
    messages of at most ``MAX_UNITS``.

    v3: many units per message — v2 was one message per (unit, period), so a refresh that moved
    every office of the country was ~400 messages (each an outbox row, a publish, an inbox row
    and a transaction share downstream) where a few now carry the same figures.
    """

    routing_key: ClassVar[str] = "scoring.scores-updated.v3"
    MAX_UNITS: ClassVar[int] = 50  # ≈ 300 KB of JSON with both methodologies' indicators

    period: str
    computed_at: datetime
    units: list[UnitScores]

    @classmethod
    def bodies(cls, *, period: str, computed_at: datetime, units: Sequence[dict[str, Any]]) -> list[bytes]:
        """``units`` (each :class:`UnitScores`' JSON) as message bodies of at most ``MAX_UNITS``
        units: the one way a producer splits a refresh (scoring; the benches that imitate it)."""
        at = computed_at.isoformat()
        return [
            orjson.dumps({"period": period, "computed_at": at, "units": list(units[i : i + cls.MAX_UNITS])})
            for i in range(0, len(units), cls.MAX_UNITS)
        ]


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


class DeclaredDay(BaseModel):
    """One admin-declared day: an extra day off (ngày nghỉ bổ sung) or a make-up working day (ngày làm bù)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    day: date
    kind: Literal["day_off", "working_day"]


class CalendarChanged(IntegrationEvent):
    """The FULL set of admin-declared days after a declaration or a withdrawal (lịch làm việc).

    Published in the transaction that changes the set; changes are serialised, so ``changed_at``
    orders them: a consumer keeps the set with the latest ``changed_at`` and ignores an older
    one delivered late. With the holidays package's calendar (``shared.calendar``) the set gives
    the same working days scoring judges with.
    """

    routing_key: ClassVar[str] = "scoring.calendar-changed.v1"

    days: list[DeclaredDay]
    changed_at: datetime
