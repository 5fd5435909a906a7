"""A ranking (bảng xếp hạng) as people read it: ranked units first, provisional ones apart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from services.reporting.domain.briefing import GroupLabel, RankingRow

GRADES: dict[str, tuple[str, str]] = {
    "excellent": ("Xuất sắc", "Excellent"),
    "good": ("Tốt", "Good"),
    "fair": ("Khá", "Fair"),
    "average": ("Trung bình", "Average"),
    "weak": ("Yếu", "Weak"),
}


def grade_name(grade: str, lang: str) -> str:
    vi, en = GRADES.get(grade, (grade, grade))
    return en if lang == "en" else vi


class StoredRow(NamedTuple):
    """One unit's stored score as a ranking reads it (``adapters.repository.ranking_rows``)."""

    unit_code: str
    unit_name: str
    level: str
    parent_code: str | None
    total: Decimal
    grade: str
    rank: int | None
    rank_delta: int | None
    dossiers: int
    provisional: bool
    groups: str  # the JSON object group id → points
    previous_rank: int | None  # in the period before, when ranked there


def build_ranking(stored: Iterable[StoredRow]) -> list[RankingRow]:
    """Stored scores as a ranking, best first, provisional last; a missing ``rank_delta`` is the
    rank change since the period before (positive = moved up)."""
    return sorted(map(_row, stored), key=_order)


def _row(s: StoredRow) -> RankingRow:
    rank = None if s.provisional else s.rank
    delta = None if s.provisional else s.rank_delta
    if delta is None and rank is not None and s.previous_rank is not None:
        delta = s.previous_rank - rank
    return RankingRow(
        unit_code=s.unit_code,
        unit_name=s.unit_name,
        level=s.level,
        parent_code=s.parent_code,
        total=Decimal(s.total),
        grade=s.grade,
        rank=rank,
        rank_delta=delta,
        groups={g: Decimal(str(p)) for g, p in orjson.loads(s.groups or "{}").items()},
        dossiers=s.dossiers,
        provisional=s.provisional,
    )


def _order(r: RankingRow) -> tuple[int, int, Decimal, str]:
    return (1 if r.provisional else 0, r.rank if r.rank is not None else 10**6, -r.total, r.unit_code)


def sort_rows(rows: Sequence[RankingRow], key: str, descending: bool) -> list[RankingRow]:
    """Sort for the dashboard's sortable columns (unknown keys keep the ranking order)."""
    getters: dict[str, Any] = {
        "total": lambda r: r.total,
        "name": lambda r: r.unit_name,
        "dossiers": lambda r: r.dossiers,
        "rank_delta": lambda r: r.rank_delta if r.rank_delta is not None else 0,
    }
    if key.startswith("G") and key not in getters:
        return sorted(rows, key=lambda r: r.groups.get(key, Decimal(0)), reverse=descending)
    getter = getters.get(key)
    if getter is None:
        return list(rows)
    return sorted(rows, key=getter, reverse=descending)


def group_labels(document: Mapping[str, Any] | None, group_ids: Iterable[str] = ()) -> list[GroupLabel]:
    """Groups from a methodology document; without one, the ids seen in the scores."""
    if document and isinstance(document.get("groups"), list):
        return [
            GroupLabel(
                group_id=str(g["id"]),
                name_vi=str(g.get("name_vi", g["id"])),
                name_en=str(g.get("name_en", g["id"])),
                max_points=Decimal(str(g.get("max_points", 0))),
            )
            for g in document["groups"]
        ]
    return [GroupLabel(g, g, g, Decimal(0)) for g in sorted(set(group_ids))]


def indicator_names(document: Mapping[str, Any] | None) -> dict[str, tuple[str, str, str]]:
    """indicator id → (Vietnamese name, English name, group id)."""
    out: dict[str, tuple[str, str, str]] = {}
    for g in (document or {}).get("groups", []) or []:
        for i in g.get("indicators", []) or []:
            out[str(i["id"])] = (str(i.get("name_vi", i["id"])), str(i.get("name_en", i["id"])), str(g["id"]))
    return out
