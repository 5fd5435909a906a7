"""A stored breakdown holds the figures only; shown, it is what scoring computed, word for word."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import orjson
import pytest

from services.scoring.domain import breakdown
from services.scoring.domain.definitions import DEFINITIONS
from services.scoring.domain.indicators import Count
from services.scoring.domain.methodology import BUILTIN_IDS, load_builtin
from services.scoring.domain.scoring import UnitScore, central_inheritance, forget_indicator_scores, score


def _f(x: Decimal | float | None) -> float | None:
    return None if x is None else float(x)


def full(s: UnitScore) -> list[dict[str, Any]]:
    """Every group and indicator of a scoring, with its words: what the breakdown must show."""
    return [
        {
            "id": g.id,
            "name_vi": g.name_vi,
            "name_en": g.name_en,
            "points": _f(g.points),
            "max_points": _f(g.max_points),
            "indicators": [
                {
                    "id": i.id,
                    "basis": i.basis,
                    "name_vi": i.name_vi,
                    "name_en": i.name_en,
                    "numerator": i.numerator,
                    "denominator": i.denominator,
                    "ratio": _f(i.ratio),
                    "points": _f(i.points),
                    "max_points": _f(i.max_points),
                    "applicable": i.applicable,
                    "scored": i.scored,
                    "inherited": i.inherited,
                    "explanation": i.explanation,
                    "interval": None if i.interval is None else [_f(x) for x in i.interval],
                }
                for i in g.indicators
            ],
        }
        for g in s.groups
    ]


def counts(rng: random.Random) -> dict[str, Count]:
    out = {}
    for basis in DEFINITIONS:
        d = rng.choice([0, 0, 1, 3, 40, 1234])
        n: float = rng.randint(0, d) if d else 0
        if rng.random() < 0.2 and d:
            n = n * 2 / 3  # fractional numerators (4.3 counts partial credit)
        if rng.random() < 0.1:
            continue  # a computation with no count at all
        out[basis] = Count(n, d)
    return out


@pytest.mark.parametrize("methodology_id", sorted(BUILTIN_IDS))
def test_shown_from_the_stored_figures_is_what_was_scored(methodology_id: str) -> None:
    m = load_builtin(methodology_id)
    rng = random.Random(7)
    for _ in range(200):
        central = score(m, counts(rng))
        for s, level in ((central, "central"), (score(m, counts(rng), central_inheritance(central)), "local")):
            # Through JSON, as PostgreSQL gives it back; and with the memo of words emptied, as in
            # an API process that never scored.
            stored = orjson.loads(orjson.dumps(breakdown.stored(s, "Thuế cơ sở 1", level, "P01")))
            forget_indicator_scores()
            shown = breakdown.shown(stored, m, s.grade)
            assert shown["groups"] == full(s)
            assert (shown["max_total"], shown["grade_vi"], shown["grade_en"]) == (
                float(s.max_total),
                s.grade_vi,
                s.grade_en,
            )
            assert shown["methodology_version"] == m.version
            assert (shown["unit_name"], shown["level"], shown["parent_code"]) == ("Thuế cơ sở 1", level, "P01")
            assert breakdown.group_points(stored) == {g.id: float(g.points) for g in s.groups}


def test_the_stored_figures_are_a_tenth_of_the_words() -> None:
    m = load_builtin("tax-2025")
    s = score(m, counts(random.Random(3)))
    stored = orjson.dumps(breakdown.stored(s, "Thuế cơ sở 1", "local", "P01"))
    shown = orjson.dumps(breakdown.shown(orjson.loads(stored), m, s.grade))
    assert len(stored) * 5 < len(shown)


@pytest.mark.parametrize("methodology_id", sorted(BUILTIN_IDS))
def test_a_refresh_scoring_figures_only_stores_what_the_words_explain(methodology_id: str) -> None:
    # A refresh scores without words (score(..., words=False)); what it stores, shown, must be the
    # scoring with words, word for word.
    m = load_builtin(methodology_id)
    rng = random.Random(11)
    for _ in range(200):
        c_central, c_local = counts(rng), counts(rng)
        central, central_figures = score(m, c_central), score(m, c_central, words=False)
        for s, figures, level in (
            (central, central_figures, "central"),
            (
                score(m, c_local, central_inheritance(central)),
                score(m, c_local, central_inheritance(central_figures), words=False),
                "local",
            ),
        ):
            assert all(i.explanation == "" and i.interval is None for g in figures.groups for i in g.indicators)
            assert (figures.total, figures.grade, figures.dossiers) == (s.total, s.grade, s.dossiers)
            stored = breakdown.stored(figures, "Thuế cơ sở 1", level, "P01")
            assert stored == breakdown.stored(s, "Thuế cơ sở 1", level, "P01")
            forget_indicator_scores()
            assert breakdown.shown(orjson.loads(orjson.dumps(stored)), m, s.grade)["groups"] == full(s)
