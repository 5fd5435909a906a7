"""Recompute (tính lại) from the raw events and compare with the live read model.

Rebuilds dossier facts and the catalogue from a given list of events with the same fold,
evaluate and score code as the live path, into in-memory results, then lists every difference
per (period, methodology, unit, indicator). Units, ratings and petitions are not in the raw
dossier log: they are taken from the live tables. Every rating is kept there, and the domain's
``latest_rating`` picks, per dossier, the latest given before the period's judging instant — the
rule live judging applies to a dossier's ratings (its 5.4 flag), so the two agree.

Nothing here writes: the rebuilt verdicts and scores stay in memory, and ``./sqi recompute`` runs
this in a read-only transaction (``recompute_cli.compare_with_live``). So, unlike judging into
contributions, it needs no judging step: a catalogue or calendar change committed while it runs
can make one run print a difference, never leave anything stored judged with an older copy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.repository import load_inputs, previous_ranks, score_rows
from services.scoring.adapters.tables import period_state, score
from services.scoring.domain import (
    DomainEvent,
    DossierFacts,
    Methodology,
    Procedure,
    RankInput,
    breakdown,
    fold_dossier,
    fold_procedures,
    parse_period,
    previous_period,
)
from services.scoring.domain.engine import Inputs, evaluate_period, score_period
from shared.calendar import WorkingCalendar
from shared.contracts import RawEvent


@dataclass(frozen=True, slots=True)
class Difference:
    period: str
    methodology: str
    unit_code: str
    indicator: str  # an indicator id, or "total" / "grade" / "rank" / "row"
    live: Any
    rebuilt: Any

    def __str__(self) -> str:
        return (
            f"{self.period}\t{self.methodology}\t{self.unit_code}\t{self.indicator}\t"
            f"live={self.live!r}\trebuilt={self.rebuilt!r}"
        )


def to_domain(events: Iterable[RawEvent]) -> list[DomainEvent]:
    return [DomainEvent(e.source, e.event_id, e.type, datetime.fromisoformat(e.occurred_at), e.data) for e in events]


def rebuild_facts(events: Sequence[DomainEvent]) -> tuple[dict[str, Procedure], list[DossierFacts]]:
    """Catalogue and dossier facts folded from the raw events (the same for every period)."""
    procedures = fold_procedures(events)
    by_dossier: dict[str, list[DomainEvent]] = defaultdict(list)
    for e in events:
        if e.type.startswith("dossier.") and e.data.get("dossier_id"):
            by_dossier[str(e.data["dossier_id"])].append(e)
    facts = [f for d, evs in sorted(by_dossier.items()) if (f := fold_dossier(d, evs, procedures)) is not None]
    return procedures, facts


def rebuild_inputs(
    events: Sequence[DomainEvent], live: Inputs, folded: tuple[dict[str, Procedure], list[DossierFacts]] | None = None
) -> Inputs:
    """Facts and catalogue from the events (or ``folded`` from them); units, petitions and ratings from ``live``."""
    procedures, facts = folded or rebuild_facts(events)
    return Inputs(units=live.units, procedures=procedures, facts=facts, petitions=live.petitions, ratings=live.ratings)


def _indicators(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        i["id"]: {k: i[k] for k in ("numerator", "denominator", "points", "applicable")}
        for i in breakdown.indicator_figures(payload)
    }


def compare_rows(
    period: str, methodology: str, live: Sequence[dict[str, Any]], rebuilt: Sequence[dict[str, Any]]
) -> list[Difference]:
    out: list[Difference] = []
    lv = {r["unit_code"]: r for r in live}
    rb = {r["unit_code"]: r for r in rebuilt}
    for code in sorted(lv.keys() | rb.keys()):
        a, b = lv.get(code), rb.get(code)
        if a is None or b is None:
            out.append(Difference(period, methodology, code, "row", a is not None, b is not None))
            continue
        for k in ("total", "grade", "rank"):
            if (float(a[k]) if k == "total" else a[k]) != (float(b[k]) if k == "total" else b[k]):
                out.append(Difference(period, methodology, code, k, a[k], b[k]))
        ia, ib = _indicators(a["payload"]), _indicators(b["payload"])
        for ind in sorted(ia.keys() | ib.keys()):
            if ia.get(ind) != ib.get(ind):
                out.append(Difference(period, methodology, code, ind, ia.get(ind), ib.get(ind)))
    return out


async def live_periods(session: AsyncSession) -> list[str]:
    return sorted((await session.execute(select(score.c.period).distinct())).scalars().all())


async def recompute_and_compare(
    session: AsyncSession,
    *,
    events: Iterable[RawEvent],
    periods: Sequence[str],
    methodologies: Sequence[Methodology],
    calendar: WorkingCalendar,
) -> list[Difference]:
    """Rebuild each period from ``events`` and compare with the live score rows."""
    domain = to_domain(events)
    folded = rebuild_facts(domain)  # folded once, judged per period
    diffs: list[Difference] = []
    for label in periods:
        try:
            period = parse_period(label)
        except ValueError:  # a period outside the bounds, stored before they existed: not rebuilt
            continue
        # The live rows are exact as of the period's last computation (period_state; a row's own
        # computed_at is only when it last moved): rebuild at that instant.
        computed = await session.execute(
            select(func.max(period_state.c.computed_at)).where(period_state.c.period == label)
        )
        now = computed.scalar() or datetime.now().astimezone()
        live_inputs = await load_inputs(session, period, with_facts=False)
        ev = evaluate_period(rebuild_inputs(domain, live_inputs, folded), period, now, calendar)
        for m in methodologies:
            previous: list[RankInput] = await previous_ranks(session, previous_period(period).label, m.id)
            rebuilt = [
                {
                    "unit_code": r.unit_code,
                    "total": r.total,
                    "grade": r.grade,
                    "rank": r.rank,
                    "payload": r.payload,
                }
                for r in score_period(ev, m, previous)
            ]
            diffs += compare_rows(label, m.id, await score_rows(session, label, m.id), rebuilt)
    return diffs
