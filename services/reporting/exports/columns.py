"""The ranking's columns, shared by the CSV and XLSX exports so both say the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.reporting.domain.briefing import GroupLabel, RankingRow
from services.reporting.exports.labels import grade_vi, provisional_vi

Cell = str | int | Decimal | None


@dataclass(frozen=True)
class Column:
    header: str
    kind: str  # text | points | integer | signed
    width: float


def ranking_columns(groups: Sequence[GroupLabel]) -> list[Column]:
    return [
        Column("Mã đơn vị", "text", 12),
        Column("Tên đơn vị", "text", 42),
        Column("Tổng điểm", "points", 11),
        Column("Xếp loại", "text", 12),
        Column("Hạng", "integer", 8),
        Column("Thay đổi hạng", "signed", 10),
        *(Column(group_header(g), "points", 16) for g in groups),
        Column("Số hồ sơ", "integer", 11),
        Column("Tạm tính", "text", 10),
    ]


def group_header(group: GroupLabel) -> str:
    """ "G1. Công khai, minh bạch (tối đa 20)": the group (nhóm tiêu chí) and its maximum, when known."""
    header = group.group_id if group.name_vi in ("", group.group_id) else f"{group.group_id}. {group.name_vi}"
    if group.max_points > 0:
        header += f" (tối đa {format(group.max_points.normalize(), 'f')})"
    return header


def ranking_cells(row: RankingRow, groups: Sequence[GroupLabel]) -> list[Cell]:
    """One unit's values in column order; a group the unit has no score for is left empty."""
    return [
        row.unit_code,
        row.unit_name,
        row.total,
        grade_vi(row.grade),
        row.rank,
        row.rank_delta,
        *(row.groups.get(g.group_id) for g in groups),
        row.dossiers,
        provisional_vi(row.provisional),
    ]
