"""A custom range counted chunk by chunk (range_counts) equals judging it whole (evaluate_period).

For every unit: the same counts, hence the same score rows; on the scripted October (ratings and
petitions naming dossiers), a simulated month with citizens' feedback, and the 2025 merger (as of
the range, and mapped onto today's units). Tiny chunks, so that chunking is exercised; and the
loader never holds more than one chunk's facts.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from services.scoring.adapters.repository import load_inputs, load_units
from services.scoring.application import range_counts, scoring_service, stake
from services.scoring.application.queries import shortfall_items
from services.scoring.application.range_counts import evaluate_range_counts, range_subtree_judged
from services.scoring.application.scoring_service import evaluate_live, rows_for
from services.scoring.application.stake import load_unit_stake, unit_stake
from services.scoring.application.unit_history import TODAY, evaluate_mapped, mapped_rows, units_mapped_to_today
from services.scoring.bootstrap import Scoring
from services.scoring.domain import DossierFacts, parse_period
from services.scoring.domain.engine import Evaluation, UnitRow, evaluate_period
from services.scoring.handlers.messages import apply_petition, apply_procedure_events, apply_rating, apply_units
from shared.calendar import VN_TZ, local_date
from shared.contracts import RawEvent

from . import test_unit_history as merger
from .helpers import apply_batches, compute, load_reference
from .scenario import NOW, PROCEDURE, dossier_events
from .test_incremental import ROOT, SCALE, SEED, load, refresh_until_judged, send_feedback
from .test_petition_bound import petition
from .test_subtree_inputs import rated

pytestmark = pytest.mark.integration


async def judged_both_ways(
    app: Scoring, label: str, now: datetime, units: Sequence[UnitRow] | None = None
) -> tuple[Evaluation, Evaluation]:
    """(chunk by chunk, whole) for the range ``label`` on ``units`` (default: the table's)."""
    period = parse_period(label)
    async with app.sessions() as s:
        streamed = await evaluate_range_counts(s, period=period, now=now, calendar=app.calendar, units=units)
        inputs = await load_inputs(s, period)
    if units is not None:
        inputs = replace(inputs, units=units)
    return streamed, evaluate_period(inputs, period, now, app.calendar)


async def assert_same(app: Scoring, label: str, now: datetime, units: Sequence[UnitRow] | None = None) -> int:
    """The two evaluations have the same units, counts and score rows; returns the dossiers counted."""
    streamed, whole = await judged_both_ways(app, label, now, units)
    assert streamed.units == whole.units and streamed.children == whole.children
    assert streamed.counts == whole.counts
    assert streamed.own == {} and streamed.own_petitions == whole.own_petitions
    async with app.sessions() as s:
        for m in app.methodologies.values():
            mine = [r.as_read_row() for r in await rows_for(s, ev=streamed, methodology=m)]
            theirs = [r.as_read_row() for r in await rows_for(s, ev=whole, methodology=m)]
            assert mine == theirs, (label, m.id)
    return sum(len(v) for v in whole.own.values())


class ChunkWatch:
    """Wraps the loader and the fold: chunk sizes seen, and the dossier facts alive when a chunk
    is read (none of the previous chunk's may be) and while one is judged."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, size: int, *, count_alive: bool = False) -> None:
        self.reads = 0
        self.sizes: list[int] = []
        self.alive_at_read: list[int] = []
        self.alive_at_fold: list[int] = []
        self.count_alive = count_alive  # a walk of every object: the memory test only
        self.baseline = alive_facts() if count_alive else 0
        monkeypatch.setattr(range_counts, "CHUNK_DOSSIERS", size)
        load, fold = range_counts.load_facts_chunk, range_counts.fold_chunk

        async def watched_load(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            if self.count_alive:
                self.alive_at_read.append(alive_facts() - self.baseline)
            return await load(*args, **kwargs)

        def watched_fold(counters: Any, facts: Sequence[DossierFacts], *args: Any, **kwargs: Any) -> None:
            self.sizes.append(len(facts))
            if self.count_alive:
                self.alive_at_fold.append(alive_facts() - self.baseline)
            fold(counters, facts, *args, **kwargs)

        monkeypatch.setattr(range_counts, "load_facts_chunk", watched_load)
        monkeypatch.setattr(range_counts, "fold_chunk", watched_fold)


def alive_facts() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, DossierFacts))


async def scripted_october_with_feedback(app: Scoring) -> None:
    """The scenario's October, judged, with ratings and petitions naming its dossiers."""
    await load_reference(app, NOW)
    await apply_batches(app, [dossier_events()], NOW)
    async with app.uow() as uow:
        await apply_rating(rated(1, "B1", "P02", "dissatisfied", 20), uow, now=NOW)
        await apply_rating(rated(2, "A1", "P01", "dissatisfied", 6), uow, now=NOW)
        await apply_rating(rated(3, "A1", "P01", "very_satisfied", 21), uow, now=NOW)
        await apply_petition(petition(1, datetime(2026, 9, 2, 9, tzinfo=VN_TZ), None, dossier_id="B2"), uow, now=NOW)
        await apply_petition(petition(2, datetime(2026, 10, 12, 9, tzinfo=VN_TZ), None, dossier_id="A3"), uow, now=NOW)
        await apply_petition(petition(3, datetime(2026, 10, 2, 9, tzinfo=VN_TZ), None), uow, now=NOW)
    await compute(app, "2026-10", NOW)


async def test_scripted_ranges_count_as_judged_whole(clean: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    await scripted_october_with_feedback(clean)
    watch = ChunkWatch(monkeypatch, 2)
    assert await assert_same(clean, "2026-10-05..2026-10-05", NOW) > 0  # a day
    assert await assert_same(clean, "2026-09-28..2026-10-11", NOW) > 0  # two weeks over a month boundary
    assert await assert_same(clean, "2026-10-01..2026-10-31", NOW) == 6  # a whole month, as a range
    assert await assert_same(clean, "2026-10-06..2026-10-25", NOW) > 0  # A1 rated twice, B1, A3 and B2 named
    assert await assert_same(clean, "2026-11-01..2026-11-05", NOW) >= 0  # running: A4 still open
    assert max(watch.sizes) == 2 and len(watch.sizes) > 5


async def test_the_loader_holds_one_chunk_of_facts(clean: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    await scripted_october_with_feedback(clean)
    watch = ChunkWatch(monkeypatch, 3, count_alive=True)
    period = parse_period("2026-10-01..2026-10-31")
    async with clean.sessions() as s:
        ev = await evaluate_range_counts(s, period=period, now=NOW, calendar=clean.calendar)
    # 6 dossiers: two full chunks of 3, then a read that finds none.
    assert watch.sizes == [3, 3] and watch.reads == 3
    assert len(watch.alive_at_read) == 3 and max(watch.alive_at_read) <= 0  # released before the next read
    assert max(watch.alive_at_fold) <= 3
    assert ev.own == {} and ev.counts["CT"]["2.1"].denominator > 0


async def test_a_ranking_of_a_range_holds_no_verdict(clean: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the ranking and breakdown of a range read (``evaluate_live(verdicts=False)``) is the
    chunked count, equal to the whole judging's."""
    await scripted_october_with_feedback(clean)
    watch = ChunkWatch(monkeypatch, 4)
    period = parse_period("2026-10-01..2026-10-15")
    async with clean.sessions() as s:
        counted = await evaluate_live(s, period=period, now=NOW, calendar=clean.calendar, verdicts=False)
        whole = await evaluate_live(s, period=period, now=NOW, calendar=clean.calendar)
    assert watch.sizes == [4, 2] and counted.own == {} and whole.own
    assert counted.counts == whole.counts


@pytest.fixture(scope="module")
def simulated_october(tmp_path_factory: pytest.TempPathFactory) -> list[RawEvent]:
    """The simulator's October 2026 at test_incremental's scale."""
    out = tmp_path_factory.mktemp("sim") / "month.ndjson"
    argv = ["--months", "1", "--end", "2026-10-31", "--seed", str(SEED), *SCALE, str(out)]
    subprocess.run([sys.executable, "-m", "sim.cli", *argv], check=True, capture_output=True, cwd=ROOT)
    return [RawEvent(**orjson.loads(line)) for line in out.read_bytes().splitlines() if line.strip()]


async def test_a_simulated_month_counts_as_judged_whole(
    clean: Scoring, simulated_october: list[RawEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 11, 5, 9, 0, tzinfo=VN_TZ)
    await load(clean, simulated_october, now)
    await refresh_until_judged(clean, now)
    await send_feedback(clean, simulated_october, now, now - timedelta(hours=1), seed=1)
    await refresh_until_judged(clean, now)
    watch = ChunkWatch(monkeypatch, 250)
    for label in ("2026-10-15..2026-10-15", "2026-09-24..2026-10-07", "2026-10-01..2026-10-31"):
        assert await assert_same(clean, label, now) > 0, label
    assert max(watch.sizes) == 250 and len(watch.sizes) > 10
    # Points at stake: running (open dossiers to fix) and closed.
    whole = WholeJudging()
    monkeypatch.setattr(stake, "evaluate_period", whole)
    running = await assert_same_stakes(clean, "2026-10-20..2026-11-10", now)
    assert running > 0
    assert await assert_same_stakes(clean, "2026-09-24..2026-10-07", now) == 0
    assert whole.calls == 0  # the range path never judges the country whole


async def assert_same_stakes(app: Scoring, label: str, now: datetime) -> int:
    """A range's points at stake, judged chunk by chunk for the unit's subtree, equal those of the
    whole judging, for the root and some provinces and offices; returns the items seen."""
    period = parse_period(label)
    async with app.sessions() as s:
        inputs = await load_inputs(s, period)
    ev = evaluate_period(inputs, period, now, app.calendar)
    open_ids = {f.dossier_id for f in inputs.facts if f.open_at(ev.judged_at)}
    withdrawn = {f.dossier_id for f in inputs.facts if f.withdrawn_before(ev.judged_at)}
    provinces = ev.children.get("CT", [])
    offices = [c for p in provinces for c in ev.children.get(p, ())][:3]
    units = ["CT", *provinces[:3], *offices]
    items = 0
    for unit in units:
        for m in app.methodologies.values():
            expected = unit_stake(
                ev,
                unit,
                m,
                procedures=inputs.procedures,
                calendar=app.calendar,
                open_ids=open_ids,
                withdrawn_ids=withdrawn,
                now=now,
            )
            async with app.sessions() as s:
                mine = await load_unit_stake(s, unit, m, period=period, now=now, calendar=app.calendar)
            assert mine == expected, (label, unit, m.id)
            items += len(mine.items)
    return items


async def merger_judged(app: Scoring) -> None:
    async with app.uow() as uow:
        await apply_units(merger.UNITS, uow, now=merger.NOW)
        await apply_procedure_events([PROCEDURE], uow, now=merger.NOW)
    await apply_batches(app, [merger.EVENTS], merger.NOW)
    await compute(app, merger.MAY, merger.NOW)


async def test_a_range_over_a_reorganisation(clean: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    """OLD_C is valid for the first week of the range only: its dossier counts for its successor
    OLD_A as when judged whole; mapped onto today's units (P12), chunked counts equal the whole's."""
    await merger_judged(clean)
    ChunkWatch(monkeypatch, 2)
    label = "2025-03-25..2025-05-20"
    assert await assert_same(clean, label, merger.NOW) == 5
    period, now = parse_period(label), merger.TODAY_AT  # after the merger, the range within the history kept
    async with clean.sessions() as s:
        today = units_mapped_to_today(await load_units(s), period, local_date(now))
    assert await assert_same(clean, label, now, today) == 5
    async with clean.sessions() as s:
        for m in clean.methodologies.values():
            fast = await mapped_rows(s, period=period, methodology=m, calendar=clean.calendar, now=now)
            ev = await evaluate_mapped(s, period=period, now=now, calendar=clean.calendar, mapping=TODAY)
            assert fast is not None and fast == [r.as_read_row() for r in await rows_for(s, ev=ev, methodology=m)]
            assert "P12" in {r["unit_code"] for r in fast}


async def test_a_public_year_long_range_is_ranked_chunk_by_chunk(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anonymous callers may ask for any range the API accepts (366 days): its ranking is counted
    chunk by chunk, never judged whole."""
    watch = ChunkWatch(monkeypatch, 2)
    whole = WholeJudging()
    monkeypatch.setattr(scoring_service, "evaluate_period", whole)
    # 366 days from the scenario's October (kept: the client's clock is pinned just after it, see
    # conftest); a range may end after today (judged as of now).
    year = {"period": "2026-10-01..2027-10-01"}
    r = await client.get("/api/v1/scores", params=year)
    assert r.status_code == 200, r.text
    dossiers = {row["unit_code"]: row["dossiers"] for row in r.json()["rows"]}
    assert dossiers["P01"] > 0 and dossiers["P02"] > 0
    assert len(watch.sizes) >= 3 and max(watch.sizes) == 2 and whole.calls == 0


class WholeJudging:
    """Counts calls of the whole judging (none expected)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return evaluate_period(*args, **kwargs)


async def test_a_ranges_shortfall_list_keeps_only_the_subtrees_verdicts(
    clean: Scoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dossiers behind a range's shortfall, from the asked unit's subtree judged chunk by chunk
    (the others dropped as judged), are the whole judging's, for every unit and basis."""
    await scripted_october_with_feedback(clean)
    ChunkWatch(monkeypatch, 2)
    for label in ("2026-09-28..2026-10-11", "2026-10-01..2026-10-31", "2026-10-06..2026-10-25"):
        period = parse_period(label)
        async with clean.sessions() as s:
            whole = await evaluate_live(s, period=period, now=NOW, calendar=clean.calendar)
            for unit in ["CT", *sorted(whole.units), "NOT-A-UNIT"]:
                judged = await range_subtree_judged(s, period=period, now=NOW, calendar=clean.calendar, unit_code=unit)
                mine = judged.evaluation
                assert set(mine.own) <= set(whole.subtree(unit)), (label, unit)
                assert sorted(v.dossier_id for v in mine.subtree_verdicts(unit)) == sorted(
                    v.dossier_id for v in whole.subtree_verdicts(unit)
                ), (label, unit)
                bases = {b for v in whole.subtree_verdicts(unit) for b in v.shortfalls} | {"2.1", "5.4"}
                for basis in sorted(bases):
                    assert shortfall_items(mine, unit, basis) == shortfall_items(whole, unit, basis), (label, unit)
        assert any(shortfall_items(whole, "CT", b) for b in ("2.1", "5.4")), label  # the lists are not all empty
