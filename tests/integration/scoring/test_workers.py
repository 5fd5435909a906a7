"""Two scoring workers at once: work shared through Postgres, never done twice, never stalled.

Each worker is its own process in production (own engine, own connections); here two
:class:`Scoring` apps on the same database stand for them. Judging claims dossiers and the
refresher leases periods (a tried advisory lock) inside the transaction that does the work.
A worker's own judging lanes share the work the same way, from both ends of the claim order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text

from services.scoring.adapters.dirty_periods import LEASE_NAMESPACE, claim_period, mark_periods
from services.scoring.adapters.repository import load_procedures
from services.scoring.adapters.tables import EPOCH, dirty_period, dossier, dossier_flag
from services.scoring.adapters.tallies import UNIT_SQL, drift
from services.scoring.application import aggregate, refresher
from services.scoring.application.judging import judge_flagged_chunk
from services.scoring.application.refresher import judge_pending, refresh_once
from services.scoring.bootstrap import Scoring, bootstrap
from services.scoring.settings import ScoringSettings
from shared.db import driver_connection
from tests.metric_samples import sample

from .helpers import apply_batches, load_reference, no_differences, score_table
from .scenario import NOW, _ev, _received, dossier_events

pytestmark = pytest.mark.integration


@pytest.fixture
async def second(clean: Scoring, settings: ScoringSettings) -> AsyncIterator[Scoring]:
    app = bootstrap(settings)
    yield app
    await app.dispose()


def many_dossiers(n: int) -> list:
    out = []
    for i in range(n):
        d = f"W-{i:04d}"
        out += [_received(1 + i % 20, d, "P01" if i % 2 else "P02", "online")]
        if i % 3:
            out += [_ev("completed", 2 + i % 20, d, outcome="approved", result_digitized=bool(i % 5))]
    return out


async def test_two_workers_share_the_work(clean: Scoring, second: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events(), many_dossiers(1200)], NOW)
    # Judging in parallel: each dossier judged once, the counters exact.
    judged = await asyncio.gather(judge_pending(clean, NOW), judge_pending(second, NOW))
    async with clean.sessions() as s:
        total = await s.scalar(select(func.count()).select_from(dossier))
        assert await s.scalar(select(func.count()).where(dossier.c.recheck_at < NOW)) == 0
        assert await drift(await driver_connection(s)) == []
    assert sum(judged) == total
    # Refreshing in parallel: every dirty period computed, by exactly one worker.
    async with clean.sessions() as s:
        dirty = set((await s.scalars(select(dirty_period.c.period))).all())
    a, b = await asyncio.gather(refresh_once(clean, now=NOW), refresh_once(second, now=NOW))
    assert set(a) | set(b) == dirty and not set(a) & set(b)
    alone = await score_table(clean, "2026-10")
    assert alone[("tax-2025", "P01")]["dossiers"] == 4 + 600


async def test_a_dead_worker_stalls_nothing(clean: Scoring, second: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    await judge_pending(clean, NOW)
    # Worker A claims 2026-10 and hangs mid-computation (its transaction stays open).
    conn = await clean.engine.connect()
    await conn.begin()
    await conn.execute(text("SELECT pg_advisory_xact_lock(:ns, hashtext('2026-10'))"), {"ns": LEASE_NAMESPACE})
    await conn.execute(text("DELETE FROM scoring.dirty_period WHERE period = '2026-10'"))
    pid = await conn.scalar(text("SELECT pg_backend_pid()"))
    try:
        done = await asyncio.wait_for(refresh_once(second, now=NOW), timeout=60)  # B never waits for A
        assert "2026-10" not in done and {"2026-Q4", "2026"} <= set(done)
        # A dies: its connection goes, its transaction aborts, the period is B's next tick.
        async with second.sessions() as s:
            await s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = asyncio.get_running_loop().time() + 60
        while "2026-10" not in await refresh_once(second, now=NOW):
            assert asyncio.get_running_loop().time() < deadline, "the dead worker's period was never taken"
            await asyncio.sleep(0.1)
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
    assert (await score_table(second, "2026-10"))[("tax-2025", "P01")]["dossiers"] == 4


async def test_lanes_claim_from_both_ends_and_judge_as_one_lane_does(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events(), many_dossiers(1200)], NOW)
    async with clean.sessions() as s:
        flagged = sorted(set((await s.execute(select(dossier_flag.c.dossier_id))).scalars()))
        procedures = await load_procedures(s)
    # A chunk of each lane: the first lane takes the flags from the start of the id order, the
    # second from its end.
    chunk = {"now": NOW, "calendar": clean.calendar, "procedures": procedures, "limit": 50}
    for from_end in (False, True):
        async with clean.uow() as uow:
            assert await judge_flagged_chunk(uow.session, **chunk, from_end=from_end) == 50
    async with clean.sessions() as s:
        judged = set((await s.execute(select(dossier.c.dossier_id).where(dossier.c.facts.is_not(None)))).scalars())
    assert judged == set(flagged[:50]) | set(flagged[-50:])
    rows = flagged
    # The rest in two lanes: every dossier judged once, counters exact, scores as one lane makes them.
    judged_in_lanes = await judge_pending(clean, NOW, lanes=2)
    assert judged_in_lanes == len(rows) - 100
    async with clean.sessions() as s:
        assert await s.scalar(select(func.count()).where(dossier.c.recheck_at < NOW)) == 0
        assert await drift(await driver_connection(s)) == []
    await refresh_once(clean, now=NOW)
    in_lanes = await score_table(clean, "2026-10")
    async with clean.uow() as uow:  # everything again, in one lane
        await uow.session.execute(text("UPDATE scoring.dossier SET recheck_at = :e"), {"e": EPOCH})
    assert await judge_pending(clean, NOW, lanes=1) == len(rows)
    await refresh_once(clean, now=NOW)
    assert await score_table(clean, "2026-10") == in_lanes


async def test_a_recomputation_counts_one_snapshot_while_another_worker_judges(
    clean: Scoring, second: Scoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recomputation reads a period's unit counters and its per-procedure counters in two
    statements. A judging chunk of another worker that changes them commits meanwhile — it never
    waits for the recomputation — and the recomputation still counts neither of its changes: both
    reads see the snapshot its claim began (docs/decisions.md, session 16). The chunk's mark
    survives for the next round. Checked by holding the recomputation between its two reads."""
    p01 = [e for e in dossier_events() if e.data["dossier_id"].startswith("A")]
    p02 = [e for e in dossier_events() if e.data["dossier_id"].startswith("B")]
    await load_reference(clean, NOW)
    await apply_batches(clean, [p01], NOW)
    await refresh_once(clean, now=NOW)
    before = await score_table(clean, "2026-10")

    between, release = asyncio.Event(), asyncio.Event()

    class HeldAfterUnitCounters:
        def __init__(self, conn: object) -> None:
            self._conn = conn

        def __getattr__(self, name: str) -> object:
            return getattr(self._conn, name)

        async def fetch(self, query: str, *args: object) -> object:
            rows = await self._conn.fetch(query, *args)  # type: ignore[attr-defined]
            if query == UNIT_SQL:
                between.set()
                await release.wait()
            return rows

    async def held_driver(session: object) -> HeldAfterUnitCounters:
        return HeldAfterUnitCounters(await driver_connection(session))  # type: ignore[arg-type]

    async with clean.uow() as uow:
        await mark_periods(uow.session, ["2026-10"])
    monkeypatch.setattr(aggregate, "driver", held_driver)
    recomputing = asyncio.create_task(refresh_once(clean, now=NOW))
    try:
        await asyncio.wait_for(between.wait(), timeout=60)
        # P02's dossiers arrive, and the second worker judges them — to the commit — while the
        # first is held between its two reads.
        await apply_batches(second, [p02], NOW)
        judged = await asyncio.wait_for(judge_pending(second, NOW), timeout=60)
        assert judged == len({e.data["dossier_id"] for e in p02})
        async with second.sessions() as s:
            assert await s.scalar(select(func.count()).where(dirty_period.c.period == "2026-10")) >= 1
    finally:
        release.set()
    assert "2026-10" in await asyncio.wait_for(recomputing, timeout=60)
    # The held recomputation counted what its snapshot saw: P01's dossiers, nothing of P02's —
    # neither in the unit counters read before the chunk's commit nor in the per-procedure ones
    # read after it.
    assert await score_table(clean, "2026-10") == before
    monkeypatch.undo()
    # The chunk's mark is the next round's: everything counted, equal to a recompute from scratch.
    assert "2026-10" in await refresh_once(clean, now=NOW)
    after = await score_table(clean, "2026-10")
    assert after[("tax-2025", "P02")]["dossiers"] == 2
    await no_differences(clean, p01 + p02)


async def test_two_leases_meeting_between_a_snapshot_and_its_lease_compute_the_period_once(
    clean: Scoring, second: Scoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one race the lease leaves: worker A's snapshot is taken, worker B recomputes the period
    and commits, then A gets the lease. A's deletion of the marks B deleted fails to serialize;
    A takes that as the period done by B — no failure counted, B's scores stand."""
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    await judge_pending(clean, NOW)
    b_done = asyncio.Event()
    started: list[str] = []

    async def late_lease(session: object, label: str) -> object:
        if label == "2026-10" and not started:  # A (B's own claims go straight through)
            started.append(label)
            conn = await driver_connection(session)  # type: ignore[arg-type]
            await conn.fetchval("SELECT 1")  # A's snapshot, before B's commit
            assert "2026-10" in await refresh_once(second, now=NOW)  # B, start to commit
            b_done.set()
        return await claim_period(session, label)  # type: ignore[arg-type]

    failures = sample("sqi_refresh_failures_total")
    monkeypatch.setattr(refresher, "claim_period", late_lease)
    done = await refresh_once(clean, now=NOW)
    assert b_done.is_set() and "2026-10" not in done
    assert sample("sqi_refresh_failures_total") == failures
    monkeypatch.undo()
    assert (await score_table(clean, "2026-10"))[("tax-2025", "P01")]["dossiers"] == 4
    await no_differences(clean, dossier_events())
