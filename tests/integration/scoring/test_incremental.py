"""Incremental scores (contributions summed in SQL) equal a from-scratch computation.

A simulated month (sim --scale 0.05, ~62,000 events) goes through the real handlers in messages
of 500 and the refresher; the recompute path (every dossier refolded from the raw events and
judged by the domain) must then find zero differences, in every period and methodology.
The second test lets time pass in a running month with no new event (dossiers fall overdue,
future-dated facts become known): only the due-time index re-judges, and it must still agree.
Both then receive citizens' feedback through the real handlers — ratings (re-ratings, ratings
dated after the judging instant) and petitions naming dossiers — which re-judge the dossiers
they concern (5.4's flag), and must still agree.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from services.scoring.adapters.repository import load_procedures
from services.scoring.adapters.tables import contribution, dossier, score, unit_tally
from services.scoring.adapters.tallies import drift
from services.scoring.application.drilldown import SHORTFALL_BASES, shortfall_page
from services.scoring.application.queries import shortfall_items
from services.scoring.application.recompute import live_periods, recompute_and_compare
from services.scoring.application.refresher import refresh_once
from services.scoring.application.scoring_service import evaluate_live
from services.scoring.bootstrap import Scoring
from services.scoring.domain import parse_period
from services.scoring.domain.scoring import competition_ranks
from services.scoring.handlers.messages import (
    apply_dossier_events,
    apply_petition,
    apply_procedure_events,
    apply_rating,
    apply_units,
)
from shared.calendar import VN_TZ
from shared.contracts import RawEvent, UnitRecord, UnitsChanged
from shared.contracts.feedback import RatingLevel, RatingSubmitted
from shared.db import driver_connection
from sim.world import build_world

from .test_petition_bound import petition

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SEED = 1
SCALE = ("--scale", "0.05", "--out")


@pytest.fixture(scope="module")
def month_events(tmp_path_factory: pytest.TempPathFactory) -> list[RawEvent]:
    out = tmp_path_factory.mktemp("sim") / "month.ndjson"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "--months",
            "1",
            "--end",
            "2026-10-31",
            "--seed",
            str(SEED),
            *SCALE,
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return [RawEvent(**orjson.loads(line)) for line in out.read_bytes().splitlines() if line.strip()]


def sim_units() -> UnitsChanged:
    world = build_world(SEED)
    rows = [
        UnitRecord(code=u["code"], name=u["name"], level=u["level"], parent_code=u["parent_code"] or None)
        for u in world.units
    ]
    known = {r.code for r in rows}
    rows += [
        UnitRecord(code=o.code, name=o.name, level=o.level, parent_code=o.parent_code)
        for o in world.offices
        if o.code not in known
    ]
    return UnitsChanged(units=rows)


async def load(app: Scoring, events: list[RawEvent], now: datetime) -> None:
    async with app.uow() as uow:
        await apply_units(sim_units(), uow, now=now)
        await apply_procedure_events([e for e in events if e.type.startswith("procedure.")], uow, now=now)
    dossier_events = [e for e in events if e.type.startswith("dossier.")]
    for i in range(0, len(dossier_events), 500):
        async with app.uow() as uow:
            await apply_dossier_events(dossier_events[i : i + 500], uow, now=now)


async def send_feedback(app: Scoring, events: list[RawEvent], now: datetime, until: datetime, seed: int) -> None:
    """Through the handlers, as the feedback service announces them: one dossier in eight rated
    (a third of those rated twice, 15 % dissatisfied), at instants between its receipt and
    ``until`` (after ``now``: dated after the judging instant); one in forty named in a petition."""
    rng = random.Random(seed)
    received = {
        str(e.data["dossier_id"]): datetime.fromisoformat(e.occurred_at) for e in events if e.type == "dossier.received"
    }

    def instant(after: datetime) -> datetime:
        return after + (until - after) * rng.random() if until > after else after

    async with app.uow() as uow:
        for n, (dossier_id, at) in enumerate(sorted(received.items())):
            if rng.random() < 1 / 8:
                for k in range(1 + (rng.random() < 1 / 3)):
                    level: RatingLevel = "dissatisfied"
                    if rng.random() >= 0.15:
                        level = rng.choice(["satisfied", "very_satisfied"])
                    rated = RatingSubmitted(
                        rating_id=f"{dossier_id}-{k}",
                        dossier_id=dossier_id,
                        unit_code=None,
                        level=level,
                        criteria={},
                        origin="citizen",
                        rated_at=instant(at),
                        replaced=k > 0,
                    )
                    await apply_rating(rated, uow, now=now)
            if rng.random() < 1 / 40:
                await apply_petition(petition(n, instant(at), None, dossier_id=dossier_id), uow, now=now)


async def refresh_until_judged(app: Scoring, now: datetime) -> set[str]:
    """Refresh until no dossier is left to judge: on a busy machine one tick's judging budget
    may end before the month is judged (the rest is judged next tick, as in production)."""
    done: set[str] = set()
    deadline = time.monotonic() + 600
    while True:
        done |= set(await refresh_once(app, now=now))
        async with app.sessions() as s:
            due = await s.scalar(select(func.count()).where(dossier.c.recheck_at < now))
        if not due:
            return done
        assert time.monotonic() < deadline, f"{due} dossiers still to judge"


async def assert_ranked_fairly(app: Scoring) -> None:
    """Non-provisional units of a peer group are ranked 1..n (competition ties, no gaps for the
    provisional ones); provisional units have no rank and no rank delta."""
    async with app.sessions() as s:
        rows = (await s.execute(select(score))).mappings().all()
    assert any(r["rank"] is not None for r in rows) and any(r["provisional"] for r in rows)
    peers: dict[tuple[str, str, str, str | None], dict[str, Decimal]] = defaultdict(dict)
    for r in rows:
        if r["provisional"]:
            assert r["rank"] is None and r["rank_delta"] is None, r["unit_code"]
        else:
            key = (r["methodology"], r["period"], r["payload"]["level"], r["payload"]["parent_code"])
            peers[key][r["unit_code"]] = r["total"]
    ranks = {(k[0], k[1], c): x for k, totals in peers.items() for c, x in competition_ranks(totals).items()}
    for r in rows:
        if not r["provisional"]:
            assert r["rank"] == ranks[(r["methodology"], r["period"], r["unit_code"])]


async def assert_no_drift(app: Scoring) -> None:
    """The counters kept by verdict differences equal the sums over the stored verdicts."""
    async with app.sessions() as s:
        assert await drift(await driver_connection(s)) == []
        assert (await s.scalar(select(func.count()).select_from(unit_tally)) or 0) > 0


async def assert_drilldown_equals_judging(app: Scoring, now: datetime) -> None:
    """The shortfall lists read from the stored verdicts equal those of judging every dossier."""
    period = parse_period("2026-10")
    async with app.sessions() as s:
        ev = await evaluate_live(s, period=period, now=now, calendar=app.calendar)
        procedures = await load_procedures(s)
        provinces = sorted(c for c, u in ev.units.items() if u.level == "province")
        locals_ = sorted(c for c, u in ev.units.items() if u.level == "local")
        for unit_code in ["CT", provinces[0], provinces[-1], locals_[0]]:
            for basis in [*SHORTFALL_BASES, "5.4"]:
                judged = shortfall_items(ev, unit_code, basis)
                page, total = await shortfall_page(
                    s,
                    unit_code=unit_code,
                    basis=basis,
                    period=period,
                    now=now,
                    calendar=app.calendar,
                    procedures=procedures,
                    offset=0,
                    limit=10**6,
                )
                assert total == len(judged) and page == judged, (unit_code, basis)
                second, _ = await shortfall_page(
                    s,
                    unit_code=unit_code,
                    basis=basis,
                    period=period,
                    now=now,
                    calendar=app.calendar,
                    procedures=procedures,
                    offset=5,
                    limit=3,
                )
                assert second == judged[5:8]


async def differences(app: Scoring, events: list[RawEvent]) -> tuple[list[str], list[str]]:
    async with app.sessions() as s:
        periods = await live_periods(s)
        diffs = await recompute_and_compare(
            s,
            events=events,
            periods=periods,
            methodologies=list(app.methodologies.values()),
            calendar=app.calendar,
        )
    return periods, [str(d) for d in diffs]


async def test_generated_month_equals_recompute(clean: Scoring, month_events: list[RawEvent]) -> None:
    now = datetime(2026, 11, 5, 9, 0, tzinfo=VN_TZ)  # October closed, Q4 and 2026 running
    await load(clean, month_events, now)
    done = await refresh_until_judged(clean, now)
    assert {"2026-10", "2026-Q4", "2026"} <= done
    periods, diffs = await differences(clean, month_events)
    assert {"2026-10", "2026-Q4", "2026"} <= set(periods)
    assert diffs == []
    await assert_ranked_fairly(clean)
    await assert_no_drift(clean)
    await assert_drilldown_equals_judging(clean, now)
    async with clean.sessions() as s:
        assert (await s.scalar(select(func.count()).select_from(contribution)) or 0) > 0
        assert await s.scalar(select(func.count()).where(dossier.c.recheck_at < now)) == 0
    assert await refresh_once(clean, now=now) == []  # nothing new: nothing recomputed

    # Citizens' feedback arrives after the dossiers were judged: only the dossiers it concerns
    # are judged again, and the counters (5.4) still equal a recompute, drill-downs included.
    await send_feedback(clean, month_events, now, now - timedelta(hours=1), seed=1)
    async with clean.sessions() as s:
        due = await s.scalar(select(func.count()).where(dossier.c.recheck_at < now))
        assert 0 < (due or 0) < 0.3 * (await s.scalar(select(func.count()).select_from(dossier)) or 0)
    await refresh_until_judged(clean, now)
    _, diffs = await differences(clean, month_events)
    assert diffs == []
    await assert_no_drift(clean)
    await assert_drilldown_equals_judging(clean, now)


async def test_time_passing_in_a_running_month(clean: Scoring, month_events: list[RawEvent]) -> None:
    first = datetime(2026, 10, 20, 12, 0, tzinfo=VN_TZ)  # later facts are not known yet
    await load(clean, month_events, first)
    assert "2026-10" in await refresh_until_judged(clean, first)
    later = datetime(2026, 10, 27, 16, 30, tzinfo=VN_TZ)
    # Feedback known at ``first`` but dated up to a week after it: judged at its own instant.
    await send_feedback(clean, month_events, first, later, seed=2)
    await refresh_until_judged(clean, first)
    assert "2026-10" in await refresh_until_judged(clean, later)  # dossiers fell due meanwhile
    _, diffs = await differences(clean, month_events)
    assert diffs == []
    await assert_no_drift(clean)
