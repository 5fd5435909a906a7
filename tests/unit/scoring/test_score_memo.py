"""The memo of scored units: a hit is the scoring afresh, and it holds one entry per office."""

from __future__ import annotations

from services.scoring.domain import engine
from services.scoring.domain.engine import UnitRow, _scored, forget_scores
from services.scoring.domain.indicators import Count
from services.scoring.domain.methodology import load_builtin

TAX = load_builtin("tax-2025")
UNIT = UnitRow(code="P01.L01", name="Thuế cơ sở 1", level="local", parent_code="P01")


def counts(handled: int) -> dict[str, Count]:
    return {"2.1": Count(handled - 1, handled), "3.1": Count(3, 4)}


def test_unchanged_counts_reuse_the_scoring_and_moved_counts_score_again() -> None:
    forget_scores()
    first = _scored("2026-11", TAX, UNIT, counts(10), None, None)
    assert _scored("2026-11", TAX, UNIT, counts(10), None, None) is first
    moved = _scored("2026-11", TAX, UNIT, counts(11), None, None)
    forget_scores()
    afresh = _scored("2026-11", TAX, UNIT, counts(11), None, None)
    assert moved is not first and moved.digest == afresh.digest and moved.payload == afresh.payload
    assert (moved.total, moved.grade, moved.dossiers) == (afresh.total, afresh.grade, 11)


def test_an_office_scored_again_and_again_keeps_one_entry_per_period() -> None:
    # Under a stream every office's counts move each refresh: the memo must not fill with the
    # versions that never come back (the cyclic collector walks all of them).
    forget_scores()
    for handled in range(1, 200):
        for period in ("2026-11", "2026-Q4"):
            _scored(period, TAX, UNIT, counts(handled), None, None)
    assert len(engine._memo) == 2
    assert _scored("2026-11", TAX, UNIT, counts(199), None, None).dossiers == 199


def test_an_indicator_scored_from_memo_is_the_one_scored_afresh() -> None:
    from services.scoring.domain.scoring import _counted, score_indicator

    ind = next(i for g in TAX.groups for i in g.indicators if i.basis == "2.1")
    first = _counted(ind, Count(7, 9))
    assert _counted(ind, Count(7, 9)) is first
    forget_scores()
    afresh = score_indicator(ind, Count(7, 9))
    assert (first.points, first.ratio, first.explanation) == (afresh.points, afresh.ratio, afresh.explanation)
    assert first.interval is not None  # 2.1 carries its Wilson interval, memoised with it
    # 0 and 0.0 are equal keys, but a breakdown writes them differently: never served for each other.
    whole, fractional = _counted(ind, Count(0, 3)), _counted(ind, Count(0.0, 3))
    assert type(whole.numerator) is int and type(fractional.numerator) is float
