"""Scoring throughput, measured through the real handlers (no HTTP, no broker): prints figures.

    .venv/bin/python -m sim.cli --months 1 --end 2026-10-31 --seed 1 --scale 0.1 --out /tmp/m.ndjson
    flock /tmp/sqi-heavy.lock .venv/bin/python bench/scoring_bench.py /tmp/m.ndjson [--check]

Loads the simulator's units and catalogue, then the dossier events in messages of 500 (as
ingest publishes them) through the consumer's inbox + handler path into a scratch database, and
times: events applied per second, one refresh of every dirty period, a second refresh with
nothing new, and (``--check``) the from-scratch recompute and its differences (must be zero).

Judging is measured twice, as CPU per dossier of the scoring process and of the database's
backends: the back-fill (every loaded dossier judged for the first time) and, after it, a
*live-like* pass (``--rejudge N``): N dossiers spread over the whole country each receive one
more event through the consumer — what the live stream does, one distinct dossier per event —
and are judged again. The second figure is the one that bounds freshness under a stream.

``--feedback-history MONTHS`` then loads synthetic ratings and petitions (the simulator's history
has none), judges the rated dossiers again (as the consumer flags each rated dossier) and
refreshes the ``--force`` periods again: what citizens' feedback costs judging and a refresh.
With ``--check`` the from-scratch recompute compares indicator 5.4 with that history too.

``--later HOURS`` then judges the dossiers that time alone made due that many hours after
``--now`` (their events unchanged), and ``--declared-day`` flags every dossier as a declared
day does (``calendar_store.rejudge_everything``) and judges them all again.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from shared import event_loop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds  # noqa: E402
from services.scoring.adapters.calendar_store import rejudge_everything  # noqa: E402
from services.scoring.adapters.dirty_periods import mark_scored_periods  # noqa: E402
from services.scoring.adapters.tables import inbox  # noqa: E402
from services.scoring.application.recompute import live_periods, recompute_and_compare  # noqa: E402
from services.scoring.application.refresher import judge_pending, refresh_once  # noqa: E402
from services.scoring.bootstrap import Scoring, bootstrap  # noqa: E402
from services.scoring.domain.engine import forget_scores  # noqa: E402
from services.scoring.handlers.messages import apply_procedure_events, apply_units, mark_dirty  # noqa: E402
from services.scoring.settings import ScoringSettings  # noqa: E402
from services.scoring.subscriptions import SUBSCRIPTIONS  # noqa: E402
from shared.contracts import RawEvent, UnitRecord, UnitsChanged  # noqa: E402
from shared.db import driver_connection  # noqa: E402
from shared.messaging.consumer import Consumer  # noqa: E402
from shared.messaging.topology import IncomingMessage  # noqa: E402
from shared.migrations import upgrade  # noqa: E402
from sim.world import build_world  # noqa: E402

DB = "sqi_bench_scoring"
BATCH = 500


def url_of(db: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True, capture_output=True)


def postgres_cpu(db: str) -> float:
    """CPU seconds (user + system) used so far by the PostgreSQL backends connected to ``db``
    (the pool keeps its connections, so a phase's difference is that phase's SQL work; 0 when
    the server is not on this machine)."""
    out = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-Atc",
            f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}'",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return sum(cpu_seconds(int(pid)) for pid in out)


def units_of(seed: int) -> UnitsChanged:
    world = build_world(seed)
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


def live_events(lines: list[dict[str, Any]], n: int, now: datetime) -> list[dict[str, Any]]:
    """One more event for each of ``n`` dossiers spread evenly over the loaded ones (every unit),
    as the live stream would send it an hour before ``now``: an open dossier is completed, a
    completed one synced, then its result returned, else paid (0 VND at the counter)."""
    seen: dict[str, set[str]] = {}
    first: dict[str, dict[str, Any]] = {}
    for e in lines:
        did = e["data"].get("dossier_id")
        if did:
            seen.setdefault(did, set()).add(e["type"])
            if e["type"] == "dossier.received":
                first.setdefault(did, e)
    ids = sorted(first)
    picked = ids[:: max(1, len(ids) // n)][:n] if n else []
    at = (now - timedelta(hours=1)).isoformat()
    out = []
    for did in picked:
        types, src = seen[did], first[did]["source"]
        data: dict[str, Any] = {"dossier_id": did}
        if not types & {"dossier.completed", "dossier.withdrawn"}:
            kind = "dossier.completed"
            data |= {"outcome": "approved", "result_digitized": True}
            if first[did]["data"].get("officer_id"):
                data["officer_id"] = first[did]["data"]["officer_id"]
        elif "dossier.synced" not in types:
            kind = "dossier.synced"
        elif "dossier.result_returned" not in types:
            kind = "dossier.result_returned"
        else:
            kind = "dossier.paid"
            data |= {"amount_vnd": 0, "channel": "counter"}
        out.append({"data": data, "event_id": f"{did}:live", "occurred_at": at, "source": src, "type": kind})
    return out


async def feed(consumer: Consumer, lines: list[dict[str, Any]], tag: str) -> list[float]:
    """The lines through the consumer's inbox + handler path in messages of :data:`BATCH`;
    returns each message's wall time."""
    sub = SUBSCRIPTIONS[0]
    lat: list[float] = []
    for n, i in enumerate(range(0, len(lines), BATCH)):
        body = orjson.dumps({"events": lines[i : i + BATCH]})
        t = time.perf_counter()
        await consumer.apply(sub, IncomingMessage(f"bench-{tag}-{n}", "ingest.dossier-events.v1", body))
        lat.append(time.perf_counter() - t)
    return lat


async def timed_judging(app: Scoring, now: datetime, db: str, what: str) -> None:
    """Judge every due dossier and print wall time and CPU per dossier (process, PostgreSQL)."""
    t, cpu, pg = time.perf_counter(), time.process_time(), postgres_cpu(db)
    judged = await judge_pending(app, now, budget_s=3600)
    wall, cpu, pg = time.perf_counter() - t, time.process_time() - cpu, postgres_cpu(db) - pg
    print(f"judging ({what}): {judged:,} dossiers into contributions in {wall:.2f} s")
    per = 1e6 / max(judged, 1)
    print(
        f"  CPU: scoring process {cpu:.2f} s = {cpu * per:.0f} µs a dossier, "
        f"PostgreSQL backends {pg:.2f} s = {pg * per:.0f} µs a dossier"
    )


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] * 1000


async def time_reads(app: Scoring, n: int, now: datetime, readers: int = 1) -> None:
    """p50/p99 of the API's reads in-process (ASGI, no HTTP server, one reader): ranking,
    breakdown, shortfall dossier lists (2.1, and 5.4 which reads ratings and petitions) — of
    the month just refreshed."""
    import httpx

    from services.scoring.api import routes
    from services.scoring.api.app import create_app
    from shared.identity import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal

    api = create_app(app)
    api.dependency_overrides[routes.get_now] = lambda: now
    # As the API's lifespan does at start-up (ASGITransport runs no lifespan); here it also keeps
    # the loaded events, which no API process holds, out of the collector's walks.
    gc.freeze()
    admin = Principal(kind="staff", roles=("admin",), unit="CT", sub="bench")
    headers = {PRINCIPAL_HEADER: encode_principal(admin), INTERNAL_TOKEN_HEADER: app.settings.internal_token}
    period = {"period": "2026-10"}
    reads = {
        "ranking (province)": ("/api/v1/scores", {**period, "level": "province"}),
        "ranking (local, one province)": ("/api/v1/scores", {**period, "level": "local", "parent": "P01"}),
        "breakdown P01": ("/api/v1/scores/P01", period),
        "drill-down P01 2.1 (first page)": ("/api/v1/scores/P01/indicators/2.1/dossiers", period),
        "drill-down CT 2.1 (first page)": ("/api/v1/scores/CT/indicators/2.1/dossiers", period),
        # 5.4's shortfall (overdue, or rated dissatisfied, or named in a petition): with
        # --feedback-history, what the ratings and petitions cost a drill-down.
        "drill-down P01 5.4 (first page)": ("/api/v1/scores/P01/indicators/5.4/dossiers", period),
        "drill-down CT 5.4 (first page)": ("/api/v1/scores/CT/indicators/5.4/dossiers", period),
        # Points at stake judge the unit's subtree from its facts, ratings and petitions.
        "points at stake P01.L01 (local office)": ("/api/v1/scores/P01.L01/stake", period),
        "points at stake P01 (province)": ("/api/v1/scores/P01/stake", period),
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://scoring") as client:
        for name, (path, params) in reads.items():
            lat: list[float] = []

            async def reader(path: str = path, params: dict[str, str] = params, lat: list[float] = lat) -> None:
                for _ in range(n):
                    t = time.perf_counter()
                    r = await client.get(path, params=params, headers=headers)
                    lat.append(time.perf_counter() - t)
                    assert r.status_code == 200, (path, r.status_code, r.text[:300])

            await asyncio.gather(*(reader() for _ in range(readers)))
            print(
                f"read {name}: p50 {_pct(lat, 0.5):.1f} ms, p99 {_pct(lat, 0.99):.1f} ms "
                f"({readers} readers × {n} requests, one API process)"
            )


async def timed_refresh(app: Scoring, label: str, now: datetime, what: str, db: str) -> None:
    """Mark ``label`` dirty and refresh it alone: wall, process CPU and PostgreSQL backends' CPU."""
    async with app.uow() as uow:
        await mark_dirty(uow, [label])
    t, cpu, pg = time.perf_counter(), time.process_time(), postgres_cpu(db)
    await refresh_once(app, now=now)
    wall, cpu, pg = time.perf_counter() - t, time.process_time() - cpu, postgres_cpu(db) - pg
    print(f"refresh of {label} alone ({what}): {wall:.2f} s wall, {cpu:.2f} s CPU, PostgreSQL {pg:.2f} s CPU")


# Ratings and petitions as two years of citizens would leave them (the simulator's history has
# none): 30 % of the loaded dossiers rated within ten days of receipt, as many again per earlier
# month on dossiers outside the load, 10 % dissatisfied; 2,000 petitions a month, answered in five
# days, a third naming a dossier.
_RATINGS_LOADED = """
INSERT INTO scoring.rating (dossier_id, rating_id, level, criteria, rated_at)
SELECT dossier_id, 'bench', CASE WHEN random() < 0.1 THEN 'dissatisfied' ELSE 'satisfied' END, '{}'::jsonb,
       least($1::timestamptz - interval '1 second', received_at + random() * interval '10 days')
FROM scoring.dossier WHERE received_at IS NOT NULL AND random() < 0.3
"""
_RATINGS_BEFORE = """
INSERT INTO scoring.rating (dossier_id, rating_id, level, criteria, rated_at)
SELECT 'bench-old-' || g, 'bench', CASE WHEN random() < 0.1 THEN 'dissatisfied' ELSE 'satisfied' END, '{}'::jsonb,
       $1::timestamptz - random() * $2::int * interval '30 days'
FROM generate_series(1, $3::int) g
"""
_PETITIONS = """
INSERT INTO scoring.petition (petition_id, version, unit_code, received_at, data, ended_at, dossier_id)
SELECT 'bench-' || g, 1, 'P' || lpad((1 + g % 34)::text, 2, '0'), t,
       jsonb_build_object('petition_id', 'bench-' || g, 'unit_code', 'P' || lpad((1 + g % 34)::text, 2, '0'),
           'received_at', t, 'answered_at', t + interval '5 days', 'published_at', t + interval '6 days',
           'status', 'published', 'category', 'thue-tncn', 'classification', 'tthc',
           'dossier_id', CASE WHEN g % 3 = 0 THEN 'bench-old-' || g END),
       t + interval '5 days', CASE WHEN g % 3 = 0 THEN 'bench-old-' || g END
FROM (SELECT g, $1::timestamptz - random() * $2::int * interval '30 days' AS t FROM generate_series(1, $3::int) g) s
"""

# What the consumer does per rating (handlers.messages.flag_for_feedback), for the rows loaded by
# SQL: each rated dossier is judged again from its earliest rating.
_FLAG_RATED = """
UPDATE scoring.dossier d SET recheck_at = least(d.recheck_at, r.t)
FROM (SELECT dossier_id, min(rated_at) AS t FROM scoring.rating GROUP BY dossier_id) r
WHERE d.dossier_id = r.dossier_id AND d.unjudgeable IS NULL
"""


async def load_feedback_history(app: Scoring, now: datetime, months: int) -> tuple[int, int]:
    """:data:`_RATINGS_LOADED`, :data:`_RATINGS_BEFORE` and :data:`_PETITIONS`, the rated dossiers
    flagged for judging (:data:`_FLAG_RATED`); the rows added."""
    async with app.uow() as uow:
        conn = await driver_connection(uow.session)
        loaded = int((await conn.execute(_RATINGS_LOADED, now)).rsplit(" ", 1)[-1])
        await conn.execute(_RATINGS_BEFORE, now, months, loaded * months)
        await conn.execute(_PETITIONS, now, months, 2000 * months)
        await conn.execute(_FLAG_RATED)
        await conn.execute("ANALYZE scoring.rating; ANALYZE scoring.petition")
    return loaded * (months + 1), 2000 * months


async def run(args: argparse.Namespace) -> None:
    raw = args.raw
    procedures = [RawEvent(**e) for e in raw if e["type"].startswith("procedure.")]
    dossier_lines = [e for e in raw if e["type"].startswith("dossier.")]
    if args.limit:
        dossier_lines = dossier_lines[: args.limit]
    app: Scoring = bootstrap(ScoringSettings(database_url=url_of(args.db), environment="test"))
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    try:
        async with app.uow() as uow:
            await apply_units(units_of(args.seed), uow, now=now)
            await apply_procedure_events(procedures, uow, now=now)
        consumer = Consumer(uow_factory=app.uow, inbox=inbox)
        t0 = time.perf_counter()
        lat = sorted(await feed(consumer, dossier_lines, "load"))
        dt = time.perf_counter() - t0
        print(f"events: {len(dossier_lines):,} in {len(lat)} messages of {BATCH}")
        print(f"consumer: {dt:.1f} s = {len(dossier_lines) / dt:,.0f} events/s")
        print(f"  per message p50 {lat[len(lat) // 2] * 1000:.0f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms")
        await timed_judging(app, now, args.db, "back-fill, first judging")
        if args.rejudge:
            live = live_events(dossier_lines, args.rejudge, now)
            await feed(consumer, live, "live")
            kinds = Counter(e["type"].removeprefix("dossier.") for e in live)
            mix = ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items()))
            print(f"live-like: one more event for {len(live):,} dossiers ({mix})")
            await timed_judging(app, now, args.db, "live-like, one new event each")
            dossier_lines += live
        if args.later:
            later = now + timedelta(hours=args.later)
            await timed_judging(app, later, args.db, f"due by time alone {args.later:g} h later")
        if args.declared_day:
            async with app.uow() as uow:
                await rejudge_everything(uow.session)
            await timed_judging(app, now + timedelta(hours=args.later), args.db, "every dossier, a declared day")
        for label in ("first", "second (nothing new)"):
            t = time.perf_counter()
            done = await refresh_once(app, now=now)
            print(f"refresh {label}: {time.perf_counter() - t:.2f} s for {sorted(done)}")
        for label in args.force:
            await timed_refresh(app, label, now, "nothing new", args.db)
        if args.feedback_history:
            ratings, petitions = await load_feedback_history(app, now, args.feedback_history)
            months = args.feedback_history
            print(f"feedback history: {ratings:,} ratings and {petitions:,} petitions over {months} months")
            # As the live stream does per rating: the rated dossiers are judged again (5.4's flag),
            # and the periods whose verdicts changed are refreshed (once: a history, not a stream).
            await timed_judging(app, now, args.db, "the rated dossiers, once")
            t = time.perf_counter()
            done = await refresh_once(app, now=now)
            print(f"refresh of what that judging changed: {time.perf_counter() - t:.2f} s for {sorted(done)}")
            for label in args.force:
                await timed_refresh(app, label, now, "with that history", args.db)
                # The live case (a stream moves every office's counts): no unit's score memoised.
                forget_scores()
                await timed_refresh(app, label, now, "with that history, every unit scored again", args.db)
            async with app.uow() as uow:  # loaded by SQL, not by the handlers: every period counts it now
                await mark_scored_periods(uow.session)
            await refresh_once(app, now=now)
        if args.reads:
            await time_reads(app, args.reads, now, args.readers)
        if args.check:
            async with app.sessions() as s:
                periods = await live_periods(s)
                t = time.perf_counter()
                diffs = await recompute_and_compare(
                    s,
                    events=[*procedures, *(RawEvent(**e) for e in dossier_lines)],
                    periods=periods,
                    methodologies=list(app.methodologies.values()),
                    calendar=app.calendar,
                )
            print(f"recompute: {time.perf_counter() - t:.1f} s, {len(periods)} periods, {len(diffs)} differences")
            for d in diffs[:20]:
                print("  ", d)
    finally:
        await app.dispose()
        if not args.keep:
            psql(f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("events", help="NDJSON from sim.cli --out")
    p.add_argument("--seed", type=int, default=1, help="the simulator seed (for its units)")
    p.add_argument("--limit", type=int, default=0, help="only the first N dossier events")
    p.add_argument("--now", help="judging instant (ISO); default the wall clock")
    p.add_argument(
        "--rejudge", type=int, default=20_000, help="then N dossiers get one more event each, judged again (0: skip)"
    )
    p.add_argument("--check", action="store_true", help="also recompute from scratch and count differences")
    p.add_argument("--force", nargs="*", default=["2026-10"], help="periods to refresh alone afterwards")
    p.add_argument(
        "--feedback-history",
        type=int,
        default=0,
        metavar="MONTHS",
        help="then load MONTHS of synthetic ratings and petitions and refresh the --force periods again",
    )
    p.add_argument("--later", type=float, default=0, help="then judge what time alone made due HOURS later")
    p.add_argument("--declared-day", action="store_true", help="then flag every dossier as a declared day does")
    p.add_argument("--reads", type=int, default=0, help="then time N of each API read in-process")
    p.add_argument("--readers", type=int, default=1, help="concurrent readers for --reads")
    p.add_argument("--db", default=DB, help="scratch database (dropped and created)")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = p.parse_args()
    args.raw = [orjson.loads(line) for line in Path(args.events).read_bytes().splitlines() if line.strip()]
    # The loaded input is the bench's, not a worker's (whose start-up heap is frozen too): out of
    # the collector's reach, full collections do not walk its ~250,000 dicts (process CPU).
    gc.freeze()
    psql(f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)")
    psql(f"CREATE DATABASE {args.db}")
    upgrade(ROOT / "services" / "scoring" / "migrations", url_of(args.db))  # alembic runs its own event loop
    event_loop.run(run(args))


if __name__ == "__main__":
    main()
