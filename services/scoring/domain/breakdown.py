"""A unit's breakdown (chi tiết điểm): stored as its figures, shown with the methodology's words.

**Stored** (``scoring.score.payload``, and the rows scored on demand): what was counted and
scored, nothing the methodology already says. The unit's name, level and parent, the version of
the methodology that scored it, and one positional array per group —
``[id, points, [indicator, …]]`` — with one per indicator —
``[id, numerator, denominator, ratio, points, max_points, applicable, inherited]`` (the ``G_*``
and ``I_*`` indexes below). Only this module reads or writes that shape.

**Shown** (:func:`shown`): the same figures with the group and indicator names, the grade's
labels, and how each indicator was computed, rebuilt from the methodology by the very functions
that scored it (:func:`services.scoring.domain.scoring.indicator_score`): the words are a pure
function of the indicator and its two counts. A methodology id is one immutable version
(``methodology_store``), so the methodology that scored a row is the one loaded under its id.

Why: a refresh under a stream rewrites every office's row (≈ 840 per month refresh, as many per
quarter and year). The full breakdown was ≈ 11–13 KB of JSON a row, half of it explanations,
and writing 840 of them cost ≈ 250–275 ms of PostgreSQL's CPU; the figures alone, ≈ 1.2 KB a
row, ≈ 40–45 ms (docs/performance.md, session 11).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .methodology import Methodology
from .scoring import IndicatorScore, UnitScore, indicator_score

# A group's array.
G_ID, G_POINTS, G_INDICATORS = 0, 1, 2
# An indicator's array.
I_ID, I_NUMERATOR, I_DENOMINATOR, I_RATIO, I_POINTS, I_MAX_POINTS, I_APPLICABLE, I_INHERITED = range(8)


def _num(x: Decimal | float | None) -> float | None:
    return None if x is None else float(x)


def stored(s: UnitScore, unit_name: str, level: str, parent_code: str | None) -> dict[str, Any]:
    """The stored breakdown of a scored unit: its figures."""
    return {
        "unit_name": unit_name,
        "level": level,
        "parent_code": parent_code,
        "methodology_version": s.methodology_version,
        "groups": [
            [
                g.id,
                _num(g.points),
                [_row(i) for i in g.indicators],
            ]
            for g in s.groups
        ],
    }


def _row(i: IndicatorScore) -> list[Any]:
    """An indicator's stored array, kept on its (memoised, shared, never changed) score."""
    row = i.row
    if row is None:
        row = i.row = [
            i.id,
            i.numerator,
            i.denominator,
            _num(i.ratio),
            _num(i.points),
            _num(i.max_points),
            i.applicable,
            i.inherited,
        ]
    return row


def group_points(payload: dict[str, Any]) -> dict[str, float]:
    """Each group's points, by group id."""
    return {g[G_ID]: g[G_POINTS] for g in payload["groups"]}


def indicator_figures(
    payload: dict[str, Any], number: Callable[[float | None], Any] = lambda x: x
) -> list[dict[str, Any]]:
    """Each indicator's figures, as announced (``IndicatorFigures``), in the methodology's order;
    ``number`` converts the ratio and the points (the announcement writes decimals as text)."""
    return [
        {
            "id": i[I_ID],
            "numerator": i[I_NUMERATOR],
            "denominator": i[I_DENOMINATOR],
            "ratio": number(i[I_RATIO]),
            "points": number(i[I_POINTS]),
            "max_points": number(i[I_MAX_POINTS]),
            "applicable": i[I_APPLICABLE],
        }
        for g in payload["groups"]
        for i in g[G_INDICATORS]
    ]


def shown(payload: dict[str, Any], methodology: Methodology, grade: str) -> dict[str, Any]:
    """The breakdown as the API shows it: the stored figures with the methodology's words —
    group and indicator names, the grade's labels, and how each indicator was computed."""
    groups = {g.id: g for g in methodology.groups}
    band = next((b for b in methodology.grade_bands if b.code == grade), None)
    out = []
    for g_id, g_points, stored_indicators in payload["groups"]:
        group = groups[g_id]
        indicators = {i.id: i for i in group.indicators}
        shown_indicators = []
        for i_id, numerator, denominator, ratio, points, max_points, applicable, inherited in stored_indicators:
            ind = indicators[i_id]
            words = indicator_score(ind, numerator, denominator, inherited=inherited)
            shown_indicators.append(
                {
                    "id": i_id,
                    "basis": ind.basis,
                    "name_vi": ind.name_vi,
                    "name_en": ind.name_en,
                    "numerator": numerator,
                    "denominator": denominator,
                    "ratio": ratio,
                    "points": points,
                    "max_points": max_points,
                    "applicable": applicable,
                    "scored": ind.scored,
                    "inherited": inherited,
                    "explanation": words.explanation,
                    "interval": None if words.interval is None else [_num(x) for x in words.interval],
                }
            )
        out.append(
            {
                "id": g_id,
                "name_vi": group.name_vi,
                "name_en": group.name_en,
                "points": g_points,
                "max_points": _num(group.max_points),
                "indicators": shown_indicators,
            }
        )
    return {
        "unit_name": payload["unit_name"],
        "level": payload["level"],
        "parent_code": payload["parent_code"],
        "methodology_version": payload["methodology_version"],
        "max_total": _num(methodology.max_total),
        "grade_vi": band.label_vi if band else grade,
        "grade_en": band.label_en if band else grade,
        "groups": out,
    }
