"""The pure scoring pipeline for one period: facts → verdicts → counts per subtree → scores → ranks.

No I/O. The recompute check (:mod:`services.scoring.application.recompute`), the shortfall lists and
a custom range's points at stake call :func:`evaluate_period`; a custom range's counts judge its
dossiers chunk by chunk with the same :func:`judged_in_period`; the live refresh takes the same
counts from SQL sums over the contributions (:mod:`services.scoring.application.aggregate`). Both
score with :func:`score_period`.
A parent's counts come from the union of its subtree's verdicts (never an average of children).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from services.scoring.domain import (
    NO_FEEDBACK,
    Count,
    DossierFacts,
    DossierFeedback,
    DossierVerdict,
    Methodology,
    Period,
    PetitionFacts,
    PetitionVerdict,
    Procedure,
    RankInput,
    RatingFacts,
    breakdown,
    central_inheritance,
    compute_catalogue_counts,
    compute_counts,
    evaluate,
    evaluate_petition,
    feedback_by_dossier,
    rank,
    score,
)
from services.scoring.domain.scoring import IndicatorScore, forget_indicator_scores
from shared.calendar import WorkingCalendar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UnitRow:
    """A unit (đơn vị) of the tree with its validity interval."""

    code: str
    name: str
    level: str
    parent_code: str | None
    valid_from: date | None = None
    valid_to: date | None = None
    successor_code: str | None = None

    def valid_in(self, period: Period) -> bool:
        return (self.valid_from is None or self.valid_from <= period.last_day) and (
            self.valid_to is None or self.valid_to >= period.first_day
        )


@dataclass(frozen=True)
class Inputs:
    units: Sequence[UnitRow]
    procedures: Mapping[str, Procedure]
    facts: Sequence[DossierFacts]
    petitions: Sequence[PetitionFacts] = ()
    ratings: Sequence[RatingFacts] = ()


@dataclass
class Evaluation:
    """Verdicts of one period, grouped by the unit (and subtree) they count for."""

    period: Period
    judged_at: datetime
    units: dict[str, UnitRow]
    children: dict[str, list[str]]
    own: dict[str, list[DossierVerdict]]
    own_petitions: dict[str, list[PetitionVerdict]]
    counts: dict[str, dict[str, Count]] = field(default_factory=dict)

    def subtree(self, code: str) -> list[str]:
        out = [code]
        for child in self.children.get(code, ()):
            out += self.subtree(child)
        return out

    def subtree_verdicts(self, code: str) -> list[DossierVerdict]:
        return [v for u in self.subtree(code) for v in self.own.get(u, ())]


def _resolve(code: str, valid: Mapping[str, UnitRow], every: Mapping[str, UnitRow]) -> str | None:
    """A dossier's unit, or its successor when the unit is not valid in the period."""
    seen: set[str] = set()
    while code not in valid:
        u = every.get(code)
        if u is None or not u.successor_code or code in seen:
            return None
        seen.add(code)
        code = u.successor_code
    return code


def unit_forest(
    units: Sequence[UnitRow], period: Period
) -> tuple[dict[str, UnitRow], dict[str, UnitRow], dict[str, list[str]]]:
    """Every unit by code, those valid in ``period``, and each valid unit's valid children (in
    code order): the tree a period's dossiers are counted on."""
    every = {u.code: u for u in units}
    valid = {u.code: u for u in units if u.valid_in(period)}
    children: dict[str, list[str]] = defaultdict(list)
    for u in sorted(valid.values(), key=lambda u: u.code):
        if u.parent_code in valid:
            children[u.parent_code].append(u.code)
    return every, valid, dict(children)


def judged_in_period(
    facts: DossierFacts, period: Period, judged_at: datetime, calendar: WorkingCalendar, feedback: DossierFeedback
) -> DossierVerdict | None:
    """The dossier's verdict for ``period`` as of ``judged_at`` when it counts in it (received or
    handled in it), else None. One rule for judging a period whole (:func:`evaluate_period`) and
    a custom range chunk by chunk (services.scoring.application.range_counts)."""
    if facts.received_at >= judged_at:
        return None
    try:
        v = evaluate(facts, period, judged_at, calendar, feedback=feedback)
    except Exception:  # unjudgeable: set aside, as the live path does (judging.py)
        log.debug("dossier cannot be judged; left out", extra={"dossier_id": facts.dossier_id})
        return None
    if not (v.handled_in_period or v.received_in_period):
        return None
    return v


def petition_verdicts(
    petitions: Iterable[PetitionFacts], period: Period, judged_at: datetime, calendar: WorkingCalendar
) -> list[PetitionVerdict]:
    """The verdicts of the petitions that count in ``period`` (received or handled in it, known at
    ``judged_at``), by the unit as judged: judging a period whole, its stored counters' roll-up and
    a custom range's all count petitions by this."""
    out: list[PetitionVerdict] = []
    for p in petitions:
        if p.received_at < judged_at:
            pv = evaluate_petition(p, period, judged_at, calendar)
            if pv.received_in_period or pv.handled_in_period:
                out.append(pv)
    return out


def evaluate_period(inputs: Inputs, period: Period, now: datetime, calendar: WorkingCalendar) -> Evaluation:
    """Judge every relevant dossier and petition, then count per unit subtree."""
    judged_at = period.judged_at(now)
    every, valid, children = unit_forest(inputs.units, period)
    own: dict[str, list[DossierVerdict]] = defaultdict(list)
    feedback = feedback_by_dossier(
        inputs.ratings, ((p.dossier_id, p.received_at) for p in inputs.petitions if p.dossier_id)
    )
    for facts in inputs.facts:
        v = judged_in_period(facts, period, judged_at, calendar, feedback.get(facts.dossier_id, NO_FEEDBACK))
        if v is None:
            continue
        code = _resolve(v.unit_code, valid, every)
        if code is not None:
            own[code].append(v)
    own_p: dict[str, list[PetitionVerdict]] = defaultdict(list)
    for pv in petition_verdicts(inputs.petitions, period, judged_at, calendar):
        code = _resolve(pv.unit_code, valid, every)
        if code is not None:
            own_p[code].append(pv)
    ev = Evaluation(period, judged_at, valid, children, dict(own), dict(own_p))
    for code in valid:
        tree = ev.subtree(code)
        ev.counts[code] = compute_counts(
            ev.subtree_verdicts(code),
            inputs.procedures,
            {valid[u].level for u in tree},
            petitions=[p for u in tree for p in own_p.get(u, ())],
        )
    catalogue = compute_catalogue_counts(inputs.procedures, period, calendar)
    for code, u in valid.items():
        if u.level == "central":
            ev.counts[code].update(catalogue)
    ev.counts["__catalogue__"] = catalogue
    return ev


@dataclass(frozen=True)
class ScoreRow:
    """One row of the read model (bảng điểm)."""

    methodology: str
    period: str
    unit_code: str
    total: Decimal
    grade: str
    rank: int | None
    rank_delta: int | None
    dossiers: int
    provisional: bool
    payload: dict[str, Any]
    digest: str = ""  # fingerprint of the payload (services.scoring.engine.payload_digest)

    def as_read_row(self) -> dict[str, Any]:
        """The fields a ranking row is built from (the read model's columns, without keys)."""
        names = ("unit_code", "total", "grade", "rank", "rank_delta", "dossiers", "provisional", "payload")
        return {k: getattr(self, k) for k in names}

    def comparable(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("total", "grade", "rank", "dossiers", "provisional")} | {
            "payload": self.payload
        }


# Scores of units whose counts did not move since the last refresh are reused: a unit's score
# and breakdown are a pure function of the methodology, the unit, its counts and the central
# unit's counts it inherits 1.1–1.3 from. A refresh scores only the units whose counts moved (and,
# their counts being unions of subtrees, their ancestors).
#
# One entry per (period, methodology, unit): the latest scoring and what it was computed from.
# Keyed by those inputs instead, a stream that moves every office each second filled the memo
# with versions that never come back (50,000 of them, ≈ 2.7 M objects the cyclic collector
# walked on every full collection: ≈ 1–3 s with the event loop stopped, 7–10 % of the worker's
# CPU under a stream; docs/performance.md, session 7). Bounded: the live periods (the running
# month, quarter and year, and a late event's month) of every office, least recently used out.
MEMO_KEYS = 8_000


@dataclass(slots=True)
class ScoredUnit:
    """What a refresh keeps of a unit's scoring: the ranked figures, the breakdown and its digest."""

    total: Decimal
    grade: str
    dossiers: int
    provisional: bool
    payload: dict[str, Any]
    digest: str


_MemoKey = tuple[str, str, str]  # (period label, methodology id, unit code)
_memo: OrderedDict[_MemoKey, tuple[tuple[Any, ...], ScoredUnit]] = OrderedDict()


def forget_scores() -> None:
    """Empty the memos of scored units and indicators (a benchmark that must score every unit again)."""
    _memo.clear()
    forget_indicator_scores()


def payload_digest(payload: dict[str, Any]) -> str:
    """A fingerprint of a breakdown: a refresh compares it instead of reading the stored payloads."""
    return hashlib.blake2b(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def _counts_key(counts: Mapping[str, Count]) -> tuple[tuple[str, float, int], ...]:
    return tuple(sorted((k, c.numerator, c.denominator) for k, c in counts.items()))


def _scored(
    period: str,
    methodology: Methodology,
    unit: UnitRow,
    counts: Mapping[str, Count],
    inherited: Mapping[str, IndicatorScore] | None,
    inherited_key: tuple[Any, ...] | None,
) -> ScoredUnit:
    key = (period, methodology.id, unit.code)
    inputs = (methodology.version, unit, _counts_key(counts), inherited_key)
    hit = _memo.get(key)
    if hit is not None and hit[0] == inputs:
        _memo.move_to_end(key)
        return hit[1]
    s = score(methodology, counts, inherited, words=False)  # the stored figures need no words
    payload = breakdown.stored(s, unit.name, unit.level, unit.parent_code)
    out = ScoredUnit(s.total, s.grade, s.dossiers, s.provisional, payload, payload_digest(payload))
    _memo[key] = (inputs, out)
    _memo.move_to_end(key)
    if len(_memo) > MEMO_KEYS:
        _memo.popitem(last=False)
    return out


def score_period(
    ev: Evaluation,
    methodology: Methodology,
    previous: Iterable[RankInput] = (),
) -> list[ScoreRow]:
    """Score every valid unit under ``methodology``; central first, the others inherit 1.1–1.3."""
    centrals = [c for c, u in ev.units.items() if u.level == "central"]
    source = ev.counts[sorted(centrals)[0]] if centrals else ev.counts["__catalogue__"]
    inherited = central_inheritance(score(methodology, source, words=False))
    inherited_key = _counts_key(source)
    scored: dict[str, ScoredUnit] = {}
    for code, u in ev.units.items():
        central = u.level == "central"
        scored[code] = _scored(
            ev.period.label,
            methodology,
            u,
            ev.counts[code],
            None if central else inherited,
            None if central else inherited_key,
        )
    ranks = rank(
        [RankInput(c, ev.units[c].level, ev.units[c].parent_code, s.total, s.provisional) for c, s in scored.items()],
        previous,
    )
    return [
        ScoreRow(
            methodology=methodology.id,
            period=ev.period.label,
            unit_code=code,
            total=s.total,
            grade=s.grade,
            rank=ranks[code].rank if code in ranks else None,
            rank_delta=ranks[code].rank_delta if code in ranks else None,
            dossiers=s.dossiers,
            provisional=s.provisional,
            payload=s.payload,
            digest=s.digest,
        )
        for code, s in sorted(scored.items())
    ]
