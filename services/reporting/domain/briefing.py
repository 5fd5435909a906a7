"""What the exports show: a ranking and the monthly briefing (báo cáo tóm tắt tháng), as plain data.

The read model fills these; the renderers (``services.reporting.exports``) turn them into CSV,
XLSX and PDF. Neither side knows the other's storage or file format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class GroupLabel:
    """A methodology group (nhóm tiêu chí) as people read it."""

    group_id: str
    name_vi: str
    name_en: str
    max_points: Decimal


@dataclass(frozen=True)
class RankingRow:
    """One unit (đơn vị) in a ranking of ``period``; ``rank`` is None for provisional units."""

    unit_code: str
    unit_name: str
    level: str
    parent_code: str | None
    total: Decimal
    grade: str
    rank: int | None
    rank_delta: int | None
    groups: Mapping[str, Decimal]
    dossiers: int
    provisional: bool


@dataclass(frozen=True)
class Mover:
    """A unit whose total moved most since the previous period (tăng / giảm điểm)."""

    unit_code: str
    unit_name: str
    previous_total: Decimal
    total: Decimal

    @property
    def change(self) -> Decimal:
        return self.total - self.previous_total


@dataclass(frozen=True)
class IndicatorLine:
    """One indicator (chỉ tiêu) of a unit: the figures behind its points."""

    indicator_id: str
    name_vi: str
    name_en: str
    numerator: float | None  # not always whole (2.2: working days; 4.3: × the sync rate)
    denominator: float | None
    ratio: Decimal | None
    points: Decimal
    max_points: Decimal
    applicable: bool

    @property
    def points_lost(self) -> Decimal:
        return self.max_points - self.points if self.applicable else Decimal(0)


@dataclass(frozen=True)
class WeakIndicator:
    """An indicator where the scope loses the most points, summed over its units."""

    indicator_id: str
    name_vi: str
    name_en: str
    points_lost: Decimal
    units_below_max: int


@dataclass(frozen=True)
class WarningItem:
    """A warning (cảnh báo), as ``GET /api/v1/warnings`` lists it."""

    kind: str  # due_soon | overdue | score_drop | grade_change | feed_silent
    unit_code: str
    detail: str
    dossier_id: str | None = None
    officer_id: str | None = None
    due_at: datetime | None = None


@dataclass(frozen=True)
class UnitPage:
    """One unit's pages of a briefing (``unit=``): its row, indicators and warnings."""

    row: RankingRow
    indicators: Sequence[IndicatorLine]
    warnings: Sequence[WarningItem]
    trend: Sequence[tuple[str, Decimal]] = ()  # (period, total), oldest first


@dataclass(frozen=True)
class Briefing:
    """The monthly briefing of ``period`` for the units under ``scope_code``."""

    period: str
    methodology: str
    scope_code: str
    scope_name: str
    groups: Sequence[GroupLabel]
    ranking: Sequence[RankingRow]
    computed_at: datetime | None  # dữ liệu tính đến: when scoring computed these figures
    generated_at: datetime
    movers_up: Sequence[Mover] = ()
    movers_down: Sequence[Mover] = ()
    weakest_indicators: Sequence[WeakIndicator] = ()
    warnings: Sequence[WarningItem] = ()
    unit: UnitPage | None = None
    notes: Sequence[str] = field(default_factory=tuple)
