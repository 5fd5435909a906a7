"""Points at stake (điểm có thể giành được): what a unit gains by fixing its open, fixable shortfalls.

For the running period a unit's head asks "what should we do this week?". Each *fix* is one
action on a set of dossiers (hồ sơ) that can still change the period's score:

==========  ==================================================================  ====================
basis       the dossiers                                                         the change
==========  ==================================================================  ====================
``2.1``     open (clock running), not yet overdue, due within N working days    finished on time
            (and before the period's end): hồ sơ sắp đến hạn                   vs. going overdue
``1.4``     handled in the period, not synced to the national portal            synced (đồng bộ)
``3.1``     handled, still open (no completion or withdrawal), no e-result      completed with an
                                                                                electronic result
``3.2``     handled, no component digitised (and nothing else missing)          digitised (số hóa)
``4.6``     of a fee-bearing procedure, no payment yet, not withdrawn           paid online
==========  ==================================================================  ====================

The points are exact: the unit's counts are recomputed with the domain's own
:func:`~services.scoring.domain.compute_counts` on the verdicts *without* and *with* the fix, both
are scored with :func:`~services.scoring.domain.score` (``r2`` half-up on the double, thresholds,
zero rules, central inheritance of 1.1–1.3), and the gain is the difference of the totals — so
every knock-on effect is included (syncing lifts 1.4 and 4.3's sync rate; a dossier going overdue
costs 2.1 and 5.4; an e-result lifts 3.1 and 4.3). For 2.1 the "without" side is the dossiers
going overdue (today they still count as on time): the points are what finishing them keeps.

Nothing here changes a closed period: its verdicts are frozen at its end, so it has no stake.
Petitions (5.2, 5.3) are not covered yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.repository import load_subtree_inputs
from services.scoring.application.drilldown import subtree_dossier_ids
from services.scoring.application.range_counts import range_subtree_judged
from services.scoring.domain import (
    Count,
    DossierVerdict,
    Indicator,
    IndicatorScore,
    Methodology,
    Period,
    UnitScore,
    central_inheritance,
    compute_catalogue_counts,
    compute_counts,
    score,
)
from services.scoring.domain.engine import Evaluation, evaluate_period
from shared.calendar import WorkingCalendar

#: The fixable computations, in the order shown when their gains tie.
FIXABLE_BASES = ("2.1", "1.4", "3.1", "3.2", "4.6")
DEFAULT_WITHIN_WD = 5

CountsOf = Callable[[Sequence[DossierVerdict]], Mapping[str, Count]]


@dataclass(frozen=True, slots=True)
class Fix:
    """One action on a set of dossiers: their verdicts without and with it (others unchanged)."""

    basis: str
    dossiers: tuple[DossierVerdict, ...]  # as they are now
    without: Mapping[str, DossierVerdict]  # by dossier id; missing = as now
    with_: Mapping[str, DossierVerdict]


@dataclass(frozen=True, slots=True)
class Effect:
    """How one indicator moves with the fix (tử số / điểm, without → with)."""

    indicator_id: str
    denominator: int | None
    numerator_without: float | None
    numerator_with: float | None
    points_without: Decimal
    points_with: Decimal


@dataclass(frozen=True, slots=True)
class StakeItem:
    """A ranked line: "finish these 12 dossiers due this week: +1.40"."""

    indicator_id: str
    basis: str
    name_vi: str
    name_en: str
    action_vi: str
    action_en: str
    points: Decimal  # total with the fix − total without it
    dossier_ids: tuple[str, ...]
    effects: tuple[Effect, ...]

    @property
    def dossiers(self) -> int:
        return len(self.dossier_ids)


def _actions(basis: str, k: int, within_wd: int) -> tuple[str, str]:
    return {
        "2.1": (
            f"Hoàn thành {k} hồ sơ đến hạn trong {within_wd} ngày làm việc tới",
            f"finish {k} dossiers due within the next {within_wd} working days",
        ),
        "1.4": (f"Đồng bộ {k} hồ sơ lên Cổng DVCQG", f"sync {k} dossiers to the national portal"),
        "3.1": (
            f"Trả kết quả điện tử khi giải quyết xong {k} hồ sơ đang xử lý",
            f"issue an electronic result when completing {k} open dossiers",
        ),
        "3.2": (f"Số hóa thành phần hồ sơ của {k} hồ sơ", f"digitise the components of {k} dossiers"),
        "4.6": (
            f"Thu phí, lệ phí trực tuyến cho {k} hồ sơ chưa nộp",
            f"collect the fee online for {k} unpaid dossiers",
        ),
    }[basis]


def find_fixes(
    verdicts: Sequence[DossierVerdict],
    *,
    period: Period,
    judged_at: datetime,
    calendar: WorkingCalendar,
    open_ids: Collection[str],
    withdrawn_ids: Collection[str] = (),
    within_wd: int = DEFAULT_WITHIN_WD,
) -> list[Fix]:
    """The fixable shortfalls among a unit's (subtree's) verdicts of the running period.

    ``open_ids``: dossiers with no completion or withdrawal before ``judged_at``;
    ``withdrawn_ids``: dossiers withdrawn (rút hồ sơ), which nothing can fix.
    """
    horizon = calendar.due_after(judged_at, within_wd)
    fixes: list[Fix] = []

    def add(
        basis: str,
        chosen: list[DossierVerdict],
        without: Callable[[DossierVerdict], DossierVerdict] | None,
        with_: Callable[[DossierVerdict], DossierVerdict] | None,
    ) -> None:
        if not chosen:
            return
        fixes.append(
            Fix(
                basis,
                tuple(sorted(chosen, key=lambda v: (v.due_at or v.received_at, v.dossier_id))),
                {v.dossier_id: without(v) for v in chosen} if without else {},
                {v.dossier_id: with_(v) for v in chosen} if with_ else {},
            )
        )

    handled = [v for v in verdicts if v.handled_in_period]
    due_soon = [
        v
        for v in handled
        if v.dossier_id in open_ids
        and v.clock_end_at is None
        and v.on_time
        and v.due_at is not None
        and judged_at < v.due_at <= horizon
        and v.due_at < period.end
    ]
    add("2.1", due_soon, lambda v: replace(v, on_time=False), None)
    add("1.4", [v for v in handled if not v.synced], None, lambda v: replace(v, synced=True))
    add(
        "3.1",
        [v for v in handled if not v.result_digitized and v.dossier_id in open_ids],
        None,
        lambda v: replace(v, completed=True, result_digitized=True),
    )
    add(
        "3.2",
        [v for v in handled if not v.digitised and v.electronic_result_ok],
        None,
        lambda v: replace(v, digitised=True),
    )
    add(
        "4.6",
        [
            v
            for v in verdicts
            if (v.received_in_period or v.handled_in_period)
            and v.has_fee
            and not v.has_payment
            and v.dossier_id not in withdrawn_ids
        ],
        None,
        lambda v: replace(v, has_payment=True, paid_online=True, paid_online_in_period=True),
    )
    return fixes


def _indicator_for(m: Methodology, basis: str) -> Indicator | None:
    return next((i for i in m.indicators if i.basis == basis and i.scored), None)


def _effects(without: UnitScore, with_: UnitScore) -> tuple[Effect, ...]:
    out: list[Effect] = []
    after: dict[str, IndicatorScore] = {i.id: i for g in with_.groups for i in g.indicators}
    for g in without.groups:
        for b in g.indicators:
            a = after[b.id]
            if (a.points, a.numerator) != (b.points, b.numerator):
                out.append(Effect(b.id, a.denominator, b.numerator, a.numerator, b.points, a.points))
    return tuple(out)


def points_at_stake(
    methodology: Methodology,
    verdicts: Sequence[DossierVerdict],
    fixes: Sequence[Fix],
    counts_of: CountsOf,
    inherited: Mapping[str, IndicatorScore] | None,
    *,
    within_wd: int = DEFAULT_WITHIN_WD,
) -> list[StakeItem]:
    """Score each fix exactly (without vs. with) and rank by the points gained, largest first.

    ``counts_of`` turns the unit's verdicts into its counts (the same call the engine makes);
    ``inherited`` is the central unit's 1.1–1.3 for a unit below central (None for central).
    Fixes that gain nothing (e.g. a threshold indicator already at its maximum) are left out.
    """
    order = {b: i for i, b in enumerate(FIXABLE_BASES)}
    items: list[StakeItem] = []
    for fix in fixes:
        ind = _indicator_for(methodology, fix.basis)
        if ind is None:
            continue
        before = [fix.without.get(v.dossier_id, v) for v in verdicts]
        after = [fix.with_.get(v.dossier_id, v) for v in verdicts]
        s_without = score(methodology, counts_of(before), inherited, words=False)
        s_with = score(methodology, counts_of(after), inherited, words=False)
        gained = s_with.total - s_without.total
        if gained <= 0:
            continue
        vi, en = _actions(fix.basis, len(fix.dossiers), within_wd)
        items.append(
            StakeItem(
                indicator_id=ind.id,
                basis=fix.basis,
                name_vi=ind.name_vi,
                name_en=ind.name_en,
                action_vi=vi,
                action_en=en,
                points=gained,
                dossier_ids=tuple(v.dossier_id for v in fix.dossiers),
                effects=_effects(s_without, s_with),
            )
        )
    items.sort(key=lambda i: (-i.points, order.get(i.basis, 99)))
    return items


@dataclass(frozen=True)
class UnitStake:
    """The stake of one unit in one period, with the fixes behind each item."""

    unit_code: str
    period: Period
    judged_at: datetime
    running: bool
    total: Decimal | None
    items: list[StakeItem]
    fixes: dict[str, Fix]


def unit_stake(
    ev: Evaluation,
    unit_code: str,
    methodology: Methodology,
    *,
    procedures: Mapping[str, Any],
    calendar: WorkingCalendar,
    open_ids: Collection[str],
    withdrawn_ids: Collection[str],
    now: datetime,
    within_wd: int = DEFAULT_WITHIN_WD,
) -> UnitStake:
    """The stake of ``unit_code`` (its subtree's dossiers) in the evaluated period."""
    period = ev.period
    running = period.start <= now < period.end
    tree = ev.subtree(unit_code)
    levels = {ev.units[u].level for u in tree if u in ev.units}
    petitions = [p for u in tree for p in ev.own_petitions.get(u, ())]
    catalogue = compute_catalogue_counts(procedures, period, calendar)
    is_central = ev.units[unit_code].level == "central"

    def counts_of(vs: Sequence[DossierVerdict]) -> Mapping[str, Count]:
        c = compute_counts(vs, procedures, levels, petitions=petitions)
        if is_central:
            c.update(catalogue)
        return c

    inherited = None if is_central else central_inheritance(score(methodology, catalogue, words=False))
    verdicts = ev.subtree_verdicts(unit_code)
    total = score(methodology, counts_of(verdicts), inherited, words=False).total
    if not running:
        return UnitStake(unit_code, period, ev.judged_at, False, total, [], {})
    fixes = find_fixes(
        verdicts,
        period=period,
        judged_at=ev.judged_at,
        calendar=calendar,
        open_ids=open_ids,
        withdrawn_ids=withdrawn_ids,
        within_wd=within_wd,
    )
    items = points_at_stake(methodology, verdicts, fixes, counts_of, inherited, within_wd=within_wd)
    return UnitStake(unit_code, period, ev.judged_at, True, total, items, {f.basis: f for f in fixes})


async def load_unit_stake(
    session: AsyncSession,
    unit_code: str,
    methodology: Methodology,
    *,
    period: Period,
    now: datetime,
    calendar: WorkingCalendar,
    within_wd: int = DEFAULT_WITHIN_WD,
) -> UnitStake:
    """Load the unit's inputs, evaluate them with the engine and compute the unit's stake.

    Only the dossiers of the unit's subtree are judged (found through the stored verdicts of the
    period; a custom range has none: its dossiers are judged chunk by chunk and those of other
    units dropped as judged): the subtree's verdicts, hence the stake, are the same as when every
    dossier of the country is judged."""
    procedures: Mapping[str, Any]
    open_ids: Collection[str]
    withdrawn_ids: Collection[str]
    if period.kind == "range":
        judged = await range_subtree_judged(session, period=period, now=now, calendar=calendar, unit_code=unit_code)
        ev, procedures, open_ids, withdrawn_ids = (
            judged.evaluation,
            judged.procedures,
            judged.open_ids,
            judged.withdrawn_ids,
        )
    else:
        inputs = await load_subtree_inputs(session, period, await subtree_dossier_ids(session, unit_code, period))
        ev = await asyncio.to_thread(evaluate_period, inputs, period, now, calendar)  # off the event loop
        procedures = inputs.procedures
        open_ids = {f.dossier_id for f in inputs.facts if f.open_at(ev.judged_at)}
        withdrawn_ids = {f.dossier_id for f in inputs.facts if f.withdrawn_before(ev.judged_at)}
    return await asyncio.to_thread(  # rescoring the unit for each fix: CPU, off the event loop
        partial(
            unit_stake,
            ev,
            unit_code,
            methodology,
            procedures=procedures,
            calendar=calendar,
            open_ids=open_ids,
            withdrawn_ids=withdrawn_ids,
            now=now,
            within_wd=within_wd,
        )
    )
