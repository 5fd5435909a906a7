"""Numerators and denominators of every tax-2025 computation (1.1 … 5.4) for one unit or subtree.

The caller passes the verdicts of the unit's dossiers (for a parent: the union of its subtree's,
never an average of children). Readings chosen where methodology.md is terse:

* "Procedures with ≥ 1 dossier in the period" (3.6, 4.2, 4.4, 4.5) means ≥ 1 dossier HANDLED in
  the period, the base shared by the dossier indicators; distinct procedure codes are counted.
* 4.1 / 4.2 "procedures the unit handles": catalogue procedures whose ``levels`` meet the levels of
  the unit (for a subtree, the levels present in it). 4.2's numerator is restricted to procedures
  offered online with a dossier received through the online channel.
* 4.3: numerator = (online dossiers received in the period that, if the procedure returns a
  document, were completed with an electronic result) × n₁.₄ / d₁.₄, computed in double in that
  order, so it can be fractional.
* 4.5 and 4.6 numerators are subsets of their denominators (fee-bearing procedures; for 4.6 the
  dossiers of fee-bearing procedures not paid wholly in 0 VND): a ratio never exceeds 100 %.
* 5.4: a dossier named in any petition received before the judging instant, or whose latest
  rating before it is ``dissatisfied``, does not count as satisfied.
* 2.2 (shown): numerator = working days from receipt to the end of the clock minus paused working
  days, summed over handled dossiers whose clock ended in the period; denominator = their number.
* 1.1: the decision is dated ≥ 20 working days before the effective date when adding 20 working
  days to the decision date does not pass the effective date; a missing effective date fails.
  1.2: publicised (local date) no later than 10 working days after the decision date. 1.3: in
  force = effective on or before the period's last day (or no effective date known).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from shared.calendar import WorkingCalendar, local_date

from .events import Procedure
from .feedback import PetitionVerdict, RatingFacts
from .period import Period
from .verdict import DossierVerdict


@dataclass(frozen=True, slots=True)
class Count:
    """A numerator over a denominator (tử số / mẫu số). Numerators may be fractional (4.3)."""

    numerator: float
    denominator: int


def _procs(codes: Iterable[str]) -> set[str]:
    return set(codes)


def compute_catalogue_counts(
    procedures: Mapping[str, Procedure], period: Period, calendar: WorkingCalendar
) -> dict[str, Count]:
    """1.1–1.3 from the procedure catalogue (measured at central; units below inherit)."""
    decided = [
        p
        for p in procedures.values()
        if p.published_decision_date is not None and period.first_day <= p.published_decision_date <= period.last_day
    ]
    on_time_11 = 0
    on_time_12 = 0
    for p in decided:
        assert p.published_decision_date is not None
        if p.legal_effective_date is not None and (
            calendar.add_working_days(p.published_decision_date, 20) <= p.legal_effective_date
        ):
            on_time_11 += 1
        if p.publicized_at is not None and local_date(p.publicized_at) <= calendar.add_working_days(
            p.published_decision_date, 10
        ):
            on_time_12 += 1
    in_force = [
        p for p in procedures.values() if p.legal_effective_date is None or p.legal_effective_date <= period.last_day
    ]
    return {
        "1.1": Count(on_time_11, len(decided)),
        "1.2": Count(on_time_12, len(decided)),
        "1.3": Count(sum(p.complete_listing for p in in_force), len(in_force)),
    }


def compute_counts(
    verdicts: Iterable[DossierVerdict],
    procedures: Mapping[str, Procedure],
    unit_levels: Collection[str],
    petitions: Iterable[PetitionVerdict] = (),
    ratings: Mapping[str, RatingFacts] | None = None,
    petitioned_dossiers: Collection[str] = (),
) -> dict[str, Count]:
    """Counts of 1.4, 2.1, 2.2, 3.1–3.6, 4.1–4.6, 5.1–5.4 for one unit or subtree.

    ``ratings``: the latest rating per dossier before the judging instant; ``petitioned_dossiers``:
    dossier ids named in any petition received before it (petitions of any unit).
    """
    vs = list(verdicts)
    handled = [v for v in vs if v.handled_in_period]
    received = [v for v in vs if v.received_in_period]
    ratings = ratings or {}
    named = set(petitioned_dossiers)
    c: dict[str, Count] = {}
    h = len(handled)

    synced = sum(v.synced for v in handled)
    c["1.4"] = Count(synced, h)
    c["2.1"] = Count(sum(v.on_time for v in handled), h)
    ended = [v.handling_working_days for v in handled if v.handling_working_days is not None]
    c["2.2"] = Count(sum(ended), len(ended))

    c["3.1"] = Count(sum(v.result_digitized for v in handled), h)
    c["3.2"] = Count(sum(v.digitised and v.electronic_result_ok for v in handled), h)
    c["3.3"] = Count(sum(v.reused for v in handled), h)
    c["3.4"] = Count(sum(v.personal_store for v in handled), h)
    c["3.5"] = Count(sum(v.population_data_used for v in handled), h)
    citizen_procs = _procs(v.procedure_code for v in handled if v.for_citizens)
    citizen_pop = _procs(v.procedure_code for v in handled if v.for_citizens and v.population_data_used)
    c["3.6"] = Count(len(citizen_pop), len(citizen_procs))

    levels = set(unit_levels)
    unit_procs = [p for p in procedures.values() if p.levels & levels]
    online_procs = {p.procedure_code for p in unit_procs if p.offered_online}
    c["4.1"] = Count(len(online_procs), len(unit_procs))
    used_online = _procs(v.procedure_code for v in handled if v.online) & online_procs
    c["4.2"] = Count(len(used_online), len(online_procs))
    sync_rate = synced / h if h else 0.0
    online_received = sum(v.online_counted for v in received)
    c["4.3"] = Count(online_received * sync_rate, len(received))
    fee_procs = _procs(v.procedure_code for v in handled if v.has_fee)
    with_payment = _procs(v.procedure_code for v in handled if v.has_fee and v.has_payment)
    paid_online = _procs(v.procedure_code for v in handled if v.has_fee and v.paid_online_in_period)
    c["4.4"] = Count(len(with_payment), len(fee_procs))
    c["4.5"] = Count(len(paid_online), len(fee_procs))
    fee_dossiers = [v for v in received if v.has_fee and not v.payments_all_zero]
    c["4.6"] = Count(sum(v.paid_online for v in fee_dossiers), len(fee_dossiers))

    ps = list(petitions)
    p_received = [p for p in ps if p.received_in_period]
    p_handled = [p for p in ps if p.handled_in_period]
    c["5.1"] = Count(sum(p.classified for p in p_received), len(p_received))
    c["5.2"] = Count(sum(p.on_time for p in p_handled), len(p_handled))
    c["5.3"] = Count(sum(p.satisfied for p in p_received), len(p_received))
    c["5.4"] = Count(sum(dossier_satisfied(v, ratings, named) for v in handled), h)
    return c


def dossier_satisfied(v: DossierVerdict, ratings: Mapping[str, RatingFacts], petitioned: Collection[str]) -> bool:
    """5.4: neither overdue, nor rated dissatisfied, nor named in a petition."""
    return satisfaction_shortfall(v, ratings, petitioned) is None


def satisfaction_shortfall(
    v: DossierVerdict, ratings: Mapping[str, RatingFacts], petitioned: Collection[str]
) -> str | None:
    """Why a dossier does not count as satisfied for 5.4 (None when it does)."""
    if not v.on_time:
        return v.shortfalls.get("2.1", "quá hạn / overdue")
    rating = ratings.get(v.dossier_id)
    if rating is not None and rating.level == "dissatisfied":
        return "bị đánh giá không hài lòng / rated dissatisfied"
    if v.dossier_id in petitioned:
        return "bị phản ánh, kiến nghị / named in a petition"
    return None
