"""From counts to points, groups, total, grade and rank (chấm điểm, xếp loại, xếp hạng).

Points are :class:`~decimal.Decimal` with two places (exactly the published figures); ratios are
Decimal percentages ``r2(100 n / d)``; 2.2 is an average in working days (``r2(n / d)``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .definitions import DEFINITIONS
from .indicators import Count
from .methodology import Indicator, Methodology
from .rounding import ZERO, percent, points_for, r2, ratio_shown

Z95 = 1.959963984540054


# Not frozen (as DossierVerdict): a frozen dataclass sets each field through object.__setattr__,
# and a refresh that moves every office builds ≈ 20,000 of these. Nothing assigns to them after
# construction (``dataclasses.replace`` makes a new one); the memo of scored units shares them.
@dataclass(slots=True)
class IndicatorScore:
    id: str
    basis: str | None
    name_vi: str
    name_en: str
    numerator: float | None
    denominator: int | None
    ratio: Decimal | None
    points: Decimal
    max_points: Decimal
    applicable: bool  # False: "no data" (zero rule null) — 0 points, group maximum unchanged
    scored: bool
    inherited: bool
    explanation: str
    interval: tuple[Decimal, Decimal] | None = None  # Wilson 95 % (2.1, 5.4)
    # Its figures as a stored breakdown writes them (:func:`.breakdown.stored`), built once: a
    # memoised score is stored again at every refresh of every office that has it.
    row: list[Any] | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class GroupScore:
    id: str
    name_vi: str
    name_en: str
    points: Decimal
    max_points: Decimal
    indicators: tuple[IndicatorScore, ...]


@dataclass(slots=True)
class UnitScore:
    methodology_id: str
    methodology_version: int
    total: Decimal
    max_total: Decimal
    grade: str
    grade_vi: str
    grade_en: str
    groups: tuple[GroupScore, ...]
    dossiers: int  # handled in the period (the base of 2.1)
    provisional: bool  # fewer than min_dossiers: shown with its figures, never ranked (rank null)

    def indicator(self, indicator_id: str) -> IndicatorScore:
        for g in self.groups:
            for i in g.indicators:
                if i.id == indicator_id:
                    return i
        raise KeyError(indicator_id)

    @property
    def group_points(self) -> dict[str, Decimal]:
        return {g.id: g.points for g in self.groups}


def wilson_interval(successes: float, n: int) -> tuple[Decimal, Decimal] | None:
    """Wilson 95 % score interval for a proportion, in percent (r2); None when n = 0."""
    if n <= 0:
        return None
    p = successes / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return r2(100 * max(0.0, centre - half)), r2(100 * min(1.0, centre + half))


def _fmt(x: float) -> str:
    return f"{x:g}"


# What each computation counts, from its declaration: "tử số / mẫu số (numerator / denominator). ".
DEFINED_AS = {basis: f"{d.vi} ({d.en}). " for basis, d in DEFINITIONS.items()}


def _indicator_score(
    ind: Indicator,
    numerator: float | None,
    denominator: int | None,
    ratio: Decimal | None,
    points: Decimal,
    applicable: bool,
    inherited: bool,
    explanation: str,
) -> IndicatorScore:
    return IndicatorScore(
        ind.id,
        ind.basis,
        ind.name_vi,
        ind.name_en,
        numerator,
        denominator,
        ratio,
        points,
        ind.max_points,
        applicable,
        ind.scored,
        inherited,
        explanation,
    )


def score_indicator(
    ind: Indicator, count: Count | None, inherited: IndicatorScore | None = None, *, words: bool = True
) -> IndicatorScore:
    """Points of one indicator, with an explanation of how they were computed (what the
    computation counts, then the formula). ``words=False``: the figures only (explanation empty)
    — what a refresh stores (:mod:`.breakdown`); the words are rebuilt from the figures when shown,
    and building them for every office at every refresh was about a fifth of its scoring."""
    s = _figures(ind, count, inherited)
    if words:
        s.explanation = _words(ind, s, inherited)
    return s


def _figures(ind: Indicator, count: Count | None, inherited: IndicatorScore | None) -> IndicatorScore:
    if inherited is not None:
        return _indicator_score(
            ind,
            inherited.numerator,
            inherited.denominator,
            inherited.ratio,
            inherited.points if ind.scored else ZERO,
            inherited.applicable,
            True,
            "",
        )
    if ind.conversion == "constant":
        return _indicator_score(ind, None, None, None, r2(ind.max_points), True, False, "")
    n = count.numerator if count else 0
    d = count.denominator if count else 0
    if d == 0:
        rule = ind.zero_rule
        points = r2(ind.max_points) if rule == "full" and ind.scored else ZERO
        return _indicator_score(ind, n, 0, None, points, rule != "null", False, "")
    if ind.basis == "2.2":
        return _indicator_score(ind, n, d, r2(n / d), ZERO, True, False, "")
    ratio = ratio_shown(n, d)
    points = points_for(n, d, ind.max_points, ind.threshold, ind.rounds_ratio_first) if ind.scored else ZERO
    return _indicator_score(ind, n, d, ratio, points, True, False, "")


def _words(ind: Indicator, s: IndicatorScore, inherited: IndicatorScore | None) -> str:
    """How ``s`` (the figures of :func:`_figures`) was computed: what the computation counts, then
    the formula with its numbers."""
    if inherited is not None:
        return "đo tại Cục Thuế, đơn vị cấp dưới kế thừa / measured at central, inherited: " + inherited.explanation
    if ind.conversion == "constant":
        return f"không áp dụng cho ngành Thuế, luôn đạt tối đa / not a tax service: always {ind.max_points}"
    defined = DEFINED_AS.get(ind.basis or "", "")
    n, d = s.numerator or 0, s.denominator or 0
    if d == 0:
        return (
            defined
            + {
                "zero": "mẫu số 0: 0 điểm / zero denominator: 0 points",
                "full": f"mẫu số 0: tối đa / zero denominator: full {ind.max_points} points",
                "null": "không có dữ liệu / no data: 0 points, group maximum unchanged",
            }[ind.zero_rule]
        )
    if ind.basis == "2.2":
        avg = s.ratio
        return defined + f"trung bình {_fmt(n)} / {d} = {avg} ngày làm việc / average {avg} working days (shown)"
    if not ind.scored:
        return defined + f"P = 100 × {_fmt(n)} / {d} = {s.ratio}% (shown, not scored)"
    p_text = (
        f"r2(100 × {_fmt(n)} / {d}) = {s.ratio}"
        if ind.rounds_ratio_first
        else (f"100 × {_fmt(n)} / {d} = {_fmt(percent(n, d))}")
    )
    m, t = ind.max_points, _fmt(ind.threshold)
    return defined + f"P = {p_text}; points = r2(min({m}, {m} × P / {t})) = {s.points}"


def score(
    methodology: Methodology,
    counts: Mapping[str, Count],
    inherited: Mapping[str, IndicatorScore] | None = None,
    *,
    words: bool = True,
) -> UnitScore:
    """Score a unit from its counts (keyed by tax-2025 computation id).

    ``inherited``: for a unit below central, the central unit's indicator scores keyed by basis
    (1.1–1.3); indicators ``measured_at: central`` take them. Central itself passes its own
    catalogue counts and no inherited scores. ``words=False``: the figures only
    (:func:`score_indicator`), what a refresh stores.
    """
    inherited = inherited or {}
    groups: list[GroupScore] = []
    for g in methodology.groups:
        scored_inds: list[IndicatorScore] = []
        for ind in g.indicators:
            inh = inherited.get(ind.basis or "") if ind.measured_at == "central" else None
            if inh is not None:
                scored_inds.append(score_indicator(ind, None, inh, words=words))
            else:
                scored_inds.append(_counted(ind, counts.get(ind.basis or ""), words=words))
        points = r2(sum((s.points for s in scored_inds), Decimal(0)))
        groups.append(GroupScore(g.id, g.name_vi, g.name_en, points, g.max_points, tuple(scored_inds)))
    total = sum((g.points for g in groups), Decimal(0))
    band = methodology.grade(total)
    handled = counts.get("2.1", Count(0, 0)).denominator
    return UnitScore(
        methodology_id=methodology.id,
        methodology_version=methodology.version,
        total=total,
        max_total=methodology.max_total,
        grade=band.code,
        grade_vi=band.label_vi,
        grade_en=band.label_en,
        groups=tuple(groups),
        dossiers=handled,
        provisional=handled < methodology.min_dossiers,
    )


def _with_interval(s: IndicatorScore, interval: tuple[Decimal, Decimal] | None) -> IndicatorScore:
    return replace(s, interval=interval)


# An indicator's score from its own counts is a pure function of the indicator and the two numbers,
# so it is kept: under a stream an event moves a few of an office's counters, and a refresh that
# re-scores every office found most of their indicators at the counts of the refresh before (and
# offices share small counts: 0 / 0, 1 / 1). Bounded above the live working set — the running
# month, quarter and year of every office under both methodologies, ≈ 55,000 — since a cyclic
# pass over more keys than an LRU holds misses every time; least recently used out. The keys hold
# only numbers, which the cyclic collector stops tracking, so an entry is one tracked object.
INDICATOR_MEMO_SIZE = 100_000
_indicator_memo: OrderedDict[tuple[int, float, bool, int, bool], IndicatorScore] = OrderedDict()
# The indicators the entries belong to, held so that no other object can take one's id while its
# entries live; a methodology loaded again brings new objects, so this is bounded too (both are
# emptied together: the entries go with the objects whose ids they name).
_memoised_indicators: dict[int, Indicator] = {}
MEMOISED_INDICATORS = 1_000


def forget_indicator_scores() -> None:
    """Empty the memo of indicator scores."""
    _indicator_memo.clear()
    _memoised_indicators.clear()


def _counted(ind: Indicator, count: Count | None, *, words: bool = True) -> IndicatorScore:
    """:func:`score_indicator` from the unit's own counts (with 2.1's and 5.4's interval when
    ``words``), memoised."""
    if id(ind) not in _memoised_indicators:
        if len(_memoised_indicators) >= MEMOISED_INDICATORS:
            forget_indicator_scores()
        _memoised_indicators[id(ind)] = ind
    n = count.numerator if count else 0
    # Whether the numerator is a float too: 0 and 0.0 are equal keys but written differently.
    key = (id(ind), n, type(n) is float, count.denominator if count else 0, words)
    hit = _indicator_memo.get(key)
    if hit is not None:
        _indicator_memo.move_to_end(key)
        return hit
    s = score_indicator(ind, count, words=words)
    if words and ind.basis in ("2.1", "5.4") and s.denominator:
        s = _with_interval(s, wilson_interval(s.numerator or 0, s.denominator))
    if len(_indicator_memo) >= INDICATOR_MEMO_SIZE:
        _indicator_memo.popitem(last=False)
    _indicator_memo[key] = s
    return s


def indicator_score(
    ind: Indicator, numerator: float | None, denominator: int | None, *, inherited: bool
) -> IndicatorScore:
    """An indicator's score from its two counts — the unit's own, or, ``inherited``, central's
    (1.1–1.3): how a stored breakdown gets its words back (:mod:`.breakdown`), by the functions
    that scored it. ``denominator`` None: a constant indicator, which counts nothing."""
    count = None if denominator is None else Count(numerator if numerator is not None else 0, denominator)
    own = _counted(ind, count)
    return score_indicator(ind, None, own) if inherited else own


def central_inheritance(central: UnitScore) -> dict[str, IndicatorScore]:
    """The central unit's indicator scores that units below inherit, keyed by basis."""
    return {
        i.basis: i
        for g in central.groups
        for i in g.indicators
        if i.basis is not None and i.basis in ("1.1", "1.2", "1.3")
    }


@dataclass(frozen=True, slots=True)
class RankInput:
    unit_code: str
    level: str
    parent_code: str | None
    total: Decimal
    provisional: bool = False  # too few dossiers to rank fairly: listed, never ranked


@dataclass(frozen=True, slots=True)
class Rank:
    rank: int
    rank_delta: int | None  # previous rank − rank: positive = moved up; None = not ranked before


def competition_ranks(totals: Mapping[str, Decimal]) -> dict[str, int]:
    """Standard competition ranking ("1224"): ties share a rank, the next rank skips."""
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    ranks: dict[str, int] = {}
    for i, (code, total) in enumerate(ordered):
        if i > 0 and total == ordered[i - 1][1]:
            ranks[code] = ranks[ordered[i - 1][0]]
        else:
            ranks[code] = i + 1
    return ranks


def rank(units_scores: Iterable[RankInput], previous: Iterable[RankInput] = ()) -> dict[str, Rank]:
    """Rank units among those of the same level and parent; delta against the previous period.

    Provisional units (xếp hạng tạm: fewer dossiers than ``min_dossiers``) get no rank and are
    absent from the result, in this period and in the previous one, so the ranked units of a
    peer group are numbered 1..n without gaps (ties share a rank, competition style).
    """

    def by_peer(rows: Iterable[RankInput]) -> dict[str, int]:
        peers: dict[tuple[str, str | None], dict[str, Decimal]] = {}
        for r in rows:
            if r.provisional:
                continue
            peers.setdefault((r.level, r.parent_code), {})[r.unit_code] = r.total
        out: dict[str, int] = {}
        for totals in peers.values():
            out.update(competition_ranks(totals))
        return out

    now = by_peer(units_scores)
    before = by_peer(previous)
    return {code: Rank(r, before[code] - r if code in before else None) for code, r in now.items()}
