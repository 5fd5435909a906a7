"""Reading a ``scores-updated`` body without the models stores exactly what the models store:
the same rows, the same decimal text, the same indicator and group JSON; a body the fast reading
does not recognise goes to the models, which accept the lax ones and refuse the malformed ones."""

from __future__ import annotations

import copy
import random
from datetime import datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from services.reporting.handlers.scores import _read, canonical_rows, model_rows
from shared.contracts.scoring import ScoresUpdated

AT = "2026-11-30T06:12:41.123456+00:00"


def figures(**changes: Any) -> dict[str, Any]:
    """One methodology's figures as scoring announces them (scoring_service.methodology_figures)."""
    f: dict[str, Any] = {
        "total": "81.25",
        "grade": "good",
        "rank": 3,
        "dossiers": 120,
        "rank_delta": -1,
        "provisional": False,
        "groups": {"G1": "15.0", "G2": "17.50", "G3": "0.1", "G4": "0", "G5": "-0.0"},
        "indicators": [
            {"id": "1.1", "numerator": None, "denominator": None, "ratio": None, "points": "6.0", "max_points": "6.0"}
            | {"applicable": False},
            {"id": "2.1", "numerator": 100, "denominator": 120, "ratio": "83.33", "points": "16.67"}
            | {"max_points": "20.0", "applicable": True},
            # 4.3's numerator is a product with the sync rate: a float
            {"id": "4.3", "numerator": 2.6666666666666665, "denominator": 4, "ratio": "66.67", "points": "5.92"}
            | {"max_points": "6", "applicable": True},
            {"id": "5.1", "numerator": 0, "denominator": 0, "ratio": "50.00", "points": "10.000000"}
            | {"max_points": "100.0", "applicable": True},
        ],
        "unit_name": "Thuế tỉnh 5",
        "level": "province",
        "parent_code": "CT",
    }
    return f | changes


def body(*units: dict[str, Any], period: str = "2026-11", at: str = AT) -> bytes:
    return orjson.dumps({"period": period, "computed_at": at, "units": list(units)})


def unit(code: str = "P05", scores: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"unit_code": code, "scores": scores or {"tax-2025": figures(), "portal-766": figures(total="71.25")}}


def exact(read: tuple[str, datetime, list[tuple[Any, ...]]]) -> tuple[Any, ...]:
    """Every value with its type and text (Decimal('50.00') == Decimal('50.0'), their text does not)."""
    period, at, rows = read
    return period, at, at.utcoffset(), [[(type(v).__name__, repr(v)) for v in r] for r in rows]


def by_models(b: bytes) -> tuple[str, datetime, list[tuple[Any, ...]]]:
    update = ScoresUpdated.model_validate_json(b)
    return update.period, update.computed_at, model_rows(update)


def assert_read_as_the_models(b: bytes) -> None:
    fast = canonical_rows(b)
    assert fast is not None, "a canonical body went to the models"
    assert exact(fast) == exact(by_models(b))


def test_scorings_bodies_are_read_as_the_models_read_them() -> None:
    assert_read_as_the_models(body(unit(), unit("P06")))
    assert_read_as_the_models(body(unit(), at="2026-11-30T13:12:41+07:00"))
    assert_read_as_the_models(body(unit(), at="2026-11-30T06:12:41Z"))
    assert_read_as_the_models(body())  # no units
    # Defaults of the optional fields; a provisional unit is not ranked, whatever was sent.
    bare = {k: v for k, v in figures().items() if k in ("total", "grade", "rank", "dossiers")}
    assert_read_as_the_models(body(unit(scores={"tax-2025": bare, "portal-766": figures(provisional=True)})))
    minimal = {"id": "2.1", "points": "1.5", "max_points": "2"}
    assert_read_as_the_models(body(unit(scores={"tax-2025": figures(indicators=[minimal], groups={})})))
    # Unknown fields anywhere are ignored, as the models ignore them.
    extra = figures(
        explanation="x", indicators=[i | {"explanation": "…", "basis": "4.3"} for i in figures()["indicators"]]
    )
    assert_read_as_the_models(
        orjson.dumps(
            {"period": "2026", "computed_at": AT, "v": 9, "units": [unit() | {"x": 1}, unit("P07", {"x": extra})]}
        )
    )


def test_the_stored_text_is_the_models_text() -> None:
    fast = canonical_rows(body(unit()))
    assert fast is not None
    [_, tax] = fast[2]  # methodologies in order
    [_, _, total, _, _, _, _, _, groups, indicators, *_] = tax
    assert str(total) == "81.25"
    assert groups == '{"G1":"15.0","G2":"17.50","G3":"0.1","G4":"0","G5":"-0.0"}'
    assert indicators.startswith('[{"id":"1.1","numerator":null,"denominator":null,"ratio":null,"points":"6.0"')
    assert '"numerator":100.0,"denominator":120,"ratio":"83.33"' in indicators  # a float, as the models store it
    assert '"numerator":2.6666666666666665' in indicators and '"points":"10.000000"' in indicators


@pytest.mark.parametrize(
    "lax",
    [
        figures(total=81.25),  # numbers for decimals: the models' own decimal text
        figures(groups={"G1": 15}),
        figures(groups={"G1": "1E+1"}),
        figures(groups={"G1": " 1.5"}),
        figures(groups={"G1": "01.5"}),
        figures(groups={"G1": "0.0000001"}),  # seven decimals: the models print 1E-7
        figures(rank=3.0),
        figures(provisional=1),
        figures(indicators=[{"id": "2.1", "numerator": "3", "points": "1", "max_points": "1"}]),
        figures(indicators=[{"id": "2.1", "numerator": 2**60, "points": "1", "max_points": "1"}]),
        figures(indicators=[{"id": "2.1", "denominator": 4.0, "points": "1", "max_points": "1"}]),
        figures(indicators=[{"id": "2.1", "points": 0.1, "max_points": 1}]),
        figures(indicators=[{"id": "2.1", "numerator": True, "points": "1", "max_points": "1"}]),
    ],
)
def test_a_lax_body_is_read_by_the_models(lax: dict[str, Any]) -> None:
    b = body(unit(scores={"tax-2025": lax}))
    assert canonical_rows(b) is None
    assert exact(_read(b)) == exact(by_models(b))


@pytest.mark.parametrize(
    "malformed",
    [
        figures(total="lots"),
        figures(total="1\n2"),
        figures(total=None),
        figures(grade=None),
        figures(rank="first"),
        figures(dossiers=True, provisional="maybe"),
        figures(groups=["G1"]),
        figures(groups={"G1": "NaN"}),
        figures(indicators={"id": "2.1"}),
        figures(indicators=[{"id": "2.1", "points": "1"}]),  # no max_points
        figures(indicators=[{"id": 21, "points": "1", "max_points": "1"}]),
        figures(indicators=[{"id": "2.1", "points": "1", "max_points": "1", "applicable": None}]),
        figures(indicators=[None]),
        {k: v for k, v in figures().items() if k != "rank"},
    ],
)
def test_a_malformed_body_fails_loudly(malformed: dict[str, Any]) -> None:
    b = body(unit(scores={"tax-2025": malformed}))
    assert canonical_rows(b) is None
    with pytest.raises(ValidationError):
        _read(b)


@pytest.mark.parametrize(
    "b",
    [
        b"not json",
        b"[]",
        orjson.dumps({"period": "2026-11", "computed_at": "yesterday", "units": []}),
        orjson.dumps({"period": 2026, "computed_at": AT, "units": []}),
        orjson.dumps({"period": "2026-11", "computed_at": AT, "units": {"P05": {}}}),
        orjson.dumps({"period": "2026-11", "computed_at": AT, "units": [{"unit_code": "P05"}]}),
        orjson.dumps({"period": "2026-11", "computed_at": "2026-02-30T00:00:00+00:00", "units": []}),
    ],
)
def test_a_malformed_envelope_fails_loudly(b: bytes) -> None:
    assert canonical_rows(b) is None
    with pytest.raises(ValidationError):
        _read(b)


def test_random_figures_as_scoring_writes_them() -> None:
    """Scoring writes a payload float's str() (its r2 points and ratios, 6.0, 1e-05): any body it
    can send is either read as the models read it or left to them."""
    rng = random.Random(7)

    def number(wild: bool) -> float:
        if wild and rng.random() < 0.2:
            return rng.random() * 10 ** rng.randint(-7, 17)
        return rng.choice([round(rng.uniform(0, 100), 2), float(rng.randint(0, 30))])

    read_fast = 0
    for _ in range(300):
        wild = rng.random() < 0.5
        f = figures(
            total=f"{rng.uniform(0, 100):.2f}",
            groups={f"G{k}": str(number(wild)) for k in range(5)},
            indicators=[
                {
                    "id": f"{k}.1",
                    "numerator": rng.choice([None, rng.randint(0, 10**6), rng.random() * 10**4]),
                    "denominator": rng.choice([None, rng.randint(0, 10**6)]),
                    "ratio": rng.choice([None, str(number(wild))]),
                    "points": str(number(wild)),
                    "max_points": str(number(wild)),
                    "applicable": rng.random() < 0.9,
                }
                for k in range(rng.randint(0, 25))
            ],
        )
        b = body(unit(scores={"tax-2025": f, "portal-766": copy.deepcopy(f)}))
        fast = canonical_rows(b)
        if fast is not None:
            read_fast += 1
            assert exact(fast) == exact(by_models(b))
    assert read_fast > 100  # most of them: the fast reading is what is exercised
