"""What a non-scoring consumer costs per event or per score row: prints figures.

    .venv/bin/python -m sim.cli --months 1 --end 2026-10-31 --seed 1 --scale 0.05 --out /tmp/con.ndjson
    flock /tmp/sqi-heavy.lock ./sqi bench consumers /tmp/con.ndjson [--service scoring|reporting|feedback|all]
    flock /tmp/sqi-heavy.lock ./sqi bench consumers /tmp/con.ndjson --message-events 40 --together 32
    flock /tmp/sqi-heavy.lock ./sqi bench consumers --kind scores [--units 735 --rounds 4]

The simulator's dossier events, in messages of 500 (as ingest publishes them), go through a
service's real consumer path (inbox row + ``on_dossier_events``, one transaction per message)
into a scratch database of its own (migrated; reporting's reference units and procedures
seeded, as its worker does), with no broker. Then the same messages go through the yardstick: parse
the body and ``COPY`` one row per event (event id, dossier id, type, occurred_at) into a plain
table, one transaction per message. For each it prints the process CPU per event (this Python
process: what competes with scoring on a 2-core machine), the PostgreSQL backends' CPU per event
(read from /proc, so only with a local server), and events/s of wall time; then the handler's
ratio to the bare COPY.

``--message-events N --together K`` is the live-like mode: under a live stream ingest's relay
publishes small messages (≈ 40 events: one request per dossier system per second) and the worker
applies the deliveries in hand together (``Consumer.apply_batch``: one transaction for up to
its prefetch). Messages of N events are handed over K at a time, as the consumer's batcher
hands them to ``apply_batch``; the bare COPY then also takes K messages a transaction.

``--kind scores`` measures reporting's ``scores-updated`` consumer the same way: messages of up
to fifty units, each unit with both shipped methodologies and every indicator (as scoring announces
them after a refresh), for ``--units`` units × the month, its quarter and its year, over
``--rounds`` refreshes (the first inserts, the next ones update with a later ``computed_at``), then
the first round again with new message ids (a late, older computation: the guard keeps the
newer rows). The yardstick parses each body and COPYs one row per (unit, period, methodology). Figures are
per score row (unit × period × methodology), which is what v2 (one unit a message) was measured in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from contextvars import copy_context
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import event_loop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds  # noqa: E402
from shared.contracts import DossierEventsAccepted  # noqa: E402
from shared.db import driver_connection  # noqa: E402
from shared.messaging.consumer import Consumer, Delivery  # noqa: E402
from shared.messaging.topology import IncomingMessage, Subscription  # noqa: E402
from shared.migrations import upgrade  # noqa: E402
from shared.unit_of_work import UnitOfWork  # noqa: E402
from sqi_cli.scratch import drop_database, recreate_database, scratch_database_url  # noqa: E402

DB = "sqi_bench_consumers"
BATCH = 500
SERVICES = ("scoring", "reporting", "feedback")


class App(Protocol):
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    def uow(self) -> UnitOfWork: ...

    async def dispose(self) -> None: ...


@dataclass
class Target:
    """One service's consumer as the bench drives it."""

    service: str
    app: App
    inbox: Table
    subscriptions: list[Subscription]
    counts: dict[str, str]
    """label → SQL counting what the handler kept (printed after the run)."""
    prepare: Callable[[], Awaitable[None]] | None = None


def target(service: str, url: str) -> Target:
    """The service's app on ``url`` (imports stay per service: the bench of one needs only it)."""
    if service == "scoring":
        from services.scoring.adapters.tables import inbox as scoring_inbox
        from services.scoring.bootstrap import bootstrap as scoring_app
        from services.scoring.settings import ScoringSettings
        from services.scoring.subscriptions import SUBSCRIPTIONS as SCORING

        counts = {"dossier_event": "scoring.dossier_event", "dossier": "scoring.dossier"}
        return Target(
            service, scoring_app(ScoringSettings(database_url=url, environment="test")), scoring_inbox, SCORING, counts
        )
    if service == "feedback":
        from services.feedback.adapters.tables import inbox as feedback_inbox
        from services.feedback.bootstrap import bootstrap as feedback_app
        from services.feedback.settings import FeedbackSettings
        from services.feedback.subscriptions import SUBSCRIPTIONS as FEEDBACK

        app = feedback_app(FeedbackSettings(database_url=url, environment="test"))
        return Target(service, app, feedback_inbox, FEEDBACK, {"dossier_unit": "feedback.dossier_unit"})
    from services.reporting.adapters.tables import inbox as reporting_inbox
    from services.reporting.bootstrap import bootstrap as reporting_app
    from services.reporting.handlers.messages import seed_reference
    from services.reporting.settings import ReportingSettings
    from services.reporting.subscriptions import SUBSCRIPTIONS as REPORTING

    settings = ReportingSettings(database_url=url, environment="test")
    rapp = reporting_app(settings)

    async def seed() -> None:
        async with rapp.uow() as uow:
            await seed_reference(settings.reference_dir, uow=uow)

    counts = {"dossier": "reporting.dossier", "feed": "reporting.feed"}
    return Target(service, rapp, reporting_inbox, REPORTING, counts, seed)


def backend_cpu(pids: list[int]) -> float:
    """User + system CPU seconds of PostgreSQL backends (a local server's /proc), 0 when unreadable."""
    return sum(cpu_seconds(pid) for pid in pids)


async def backend_pids(app: App) -> list[int]:
    async with app.sessions() as s:
        conn = await driver_connection(s)
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        await s.rollback()
    return [r["pid"] for r in rows]


async def measure(
    label: str,
    app: App,
    bodies: list[bytes],
    events: int,
    apply: Callable[[int, bytes], Awaitable[None]],
    *,
    unit: str = "event",
) -> float:
    """Apply every message; print and return the process CPU µs per event (or per ``unit``)."""
    pids = await backend_pids(app)  # the pool's connections: warm them before counting
    cpu0, pg0, t0 = time.process_time(), backend_cpu(pids), time.perf_counter()
    for n, body in enumerate(bodies):
        await apply(n, body)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    pg = backend_cpu(await backend_pids(app)) - pg0
    per_event = cpu / events * 1e6
    print(
        f"{label:<28} {per_event:6.1f} µs CPU/{unit} (process), {pg / events * 1e6:6.1f} µs (PostgreSQL), "
        f"{events / wall:9,.0f} {unit}s/s  [{cpu:.2f} s CPU, {wall:.2f} s wall]"
    )
    return per_event


_COPY_TABLE = "bench_copy"


async def copy_yardstick(
    app: App, columns: str, rows_of: Callable[[bytes], list[tuple[Any, ...]]], *, together: int = 1, total: int = 0
) -> Callable[[int, bytes], Awaitable[None]]:
    """The yardstick beside a handler: each message's rows (``rows_of``) COPYed into a bare
    table of ``columns``, ``together`` messages a transaction (one COPY; the last of ``total``
    ends a short one), as the handler gets."""
    async with app.uow() as uow:
        conn = await driver_connection(uow.session)
        await conn.execute(f"CREATE TABLE public.{_COPY_TABLE} ({columns})")
    in_hand: list[tuple[Any, ...]] = []
    held = [0]

    async def bare_copy(i: int, body: bytes) -> None:
        in_hand.extend(rows_of(body))
        held[0] += 1
        if held[0] < together and i != total - 1:
            return
        async with app.uow() as uow:
            conn = await driver_connection(uow.session)
            await conn.copy_records_to_table(_COPY_TABLE, records=in_hand, schema_name="public")
        in_hand.clear()
        held[0] = 0

    return bare_copy


def copy_rows(body: bytes) -> list[tuple[Any, ...]]:
    """The yardstick's parse: one row per event, nothing checked beyond what COPY needs."""
    rows = []
    for e in orjson.loads(body)["events"]:
        rows.append((e["event_id"], e["data"].get("dossier_id"), e["type"], datetime.fromisoformat(e["occurred_at"])))
    return rows


def messages(lines: list[bytes], limit: int = 0, size: int = BATCH) -> tuple[int, list[bytes]]:
    """The dossier events (the first ``limit``) and their bodies, ``size`` events per message."""
    dossier_events = [e for e in map(orjson.loads, lines) if str(e.get("type", "")).startswith("dossier.")]
    if limit:
        dossier_events = dossier_events[:limit]
    bodies = [orjson.dumps({"events": dossier_events[i : i + size]}) for i in range(0, len(dossier_events), size)]
    return len(dossier_events), bodies


SCORE_PERIODS = ("2026-10", "2026-Q4", "2026")  # what a refresh of the running month announces
METHODOLOGIES = ROOT / "services" / "scoring" / "domain" / "methodologies"


def score_units(n: int) -> list[str]:
    """35 provincial offices, then local offices under them in turn (``P01.B01``…)."""
    return [f"P{i % 35 + 1:02d}" + (f".B{i // 35:02d}" if i >= 35 else "") for i in range(n)]


def unit_scores(code: str, period: str, step: int) -> dict[str, Any]:
    """One unit's entry of a ``scores-updated`` as scoring announces it: both methodologies, every
    indicator, decimals as their text (``scoring_service.methodology_figures``: ``"6.0"``, not 6)."""
    scores: dict[str, Any] = {}
    for path in sorted(METHODOLOGIES.glob("*.json")):
        doc = orjson.loads(path.read_bytes())
        groups: dict[str, float] = {}
        indicators = []
        for g in doc["groups"]:
            points = 0.0
            for k, ind in enumerate(g["indicators"]):
                den = 200 + (zlib.crc32(f"{code}{period}{ind['id']}".encode()) + step) % 400
                num = den - (k * 7 + step) % 40
                ratio = round(100 * num / den, 2)
                p = round(ind["max_points"] * ratio / 100, 2)
                points += p
                indicators.append(
                    {
                        "id": ind["id"],
                        "numerator": num,
                        "denominator": den,
                        "ratio": str(ratio),
                        "points": str(p),
                        "max_points": str(float(ind["max_points"])),
                        "applicable": True,
                    }
                )
            groups[g["id"]] = round(points, 2)
        total = round(sum(groups.values()), 2)
        scores[doc["id"]] = {
            "total": f"{total:.2f}",  # the stored numeric's text
            "grade": "good" if total >= 80 else "fair",
            "rank": step % 40 + 1,
            "rank_delta": step % 3 - 1,
            "dossiers": 400 + step,
            "provisional": False,
            "groups": {g: str(p) for g, p in groups.items()},
            "indicators": indicators,
            "unit_name": f"Thuế {code}",
            "level": "local" if "." in code else "province",
            "parent_code": code.split(".")[0] if "." in code else "CT",
        }
    return {"unit_code": code, "scores": scores}


def score_messages(units: int, rounds: int) -> tuple[int, list[bytes]]:
    """Rows (unit × period × methodology) and bodies: ``rounds`` refreshes of every unit, each
    period's units in messages of ``MAX_UNITS`` as scoring sends them, then the first again (late)."""
    from shared.contracts.scoring import ScoresUpdated

    codes = score_units(units)
    start = datetime(2026, 10, 31, 10, tzinfo=UTC)
    refreshes = [
        [
            body
            for p in SCORE_PERIODS
            for body in ScoresUpdated.bodies(
                period=p, computed_at=start + timedelta(seconds=r), units=[unit_scores(c, p, r) for c in codes]
            )
        ]
        for r in range(rounds)
    ]
    bodies = [b for refresh in refreshes for b in refresh] + refreshes[0]
    return sum(len(u["scores"]) for b in bodies for u in orjson.loads(b)["units"]), bodies


def score_rows(body: bytes) -> list[tuple[Any, ...]]:
    """The yardstick's parse of a score message: one row per unit × methodology."""
    m = orjson.loads(body)
    at = datetime.fromisoformat(m["computed_at"])
    return [
        (k, m["period"], u["unit_code"], s["total"], orjson.dumps(s).decode(), at)
        for u in m["units"]
        for k, s in u["scores"].items()
    ]


async def run_scores(bodies: list[bytes], rows: int, url: str, *, batch: int = 0) -> None:
    """Reporting's scores-updated consumer, then the bare COPY of the same rows (``batch``: messages
    a transaction in the batched pass, 0 for the subscription's prefetch)."""
    from services.reporting.adapters.tables import inbox as reporting_inbox
    from services.reporting.bootstrap import bootstrap as reporting_app
    from services.reporting.settings import ReportingSettings
    from services.reporting.subscriptions import SUBSCRIPTIONS as REPORTING
    from shared.contracts.scoring import ScoresUpdated

    app = reporting_app(ReportingSettings(database_url=url, environment="test"))
    try:
        consumer = Consumer(uow_factory=app.uow, inbox=reporting_inbox)
        sub = next(s for s in REPORTING if ScoresUpdated.routing_key in s.routing_keys)
        batch = batch or consumer.prefetch_of(sub)

        async def handler_message(i: int, body: bytes) -> None:
            await consumer.apply(sub, IncomingMessage(f"bench-{i}", ScoresUpdated.routing_key, body))

        bare_copy = await copy_yardstick(
            app,
            "methodology text, period text, unit_code text, total numeric, figures text, computed_at timestamptz",
            score_rows,
        )
        n = len(bodies)
        handler = await measure("reporting on_scores_updated", app, bodies, n, handler_message, unit="message")
        together: list[Delivery] = []

        async def batched_message(i: int, body: bytes) -> None:
            # As the worker applies deliveries in hand together (up to its prefetch) in one transaction.
            together.append(Delivery(IncomingMessage(f"bench-b-{i}", ScoresUpdated.routing_key, body), copy_context()))
            if len(together) == batch or i == n - 1:
                await consumer.apply_batch(sub, together)
                for waiting in together:
                    await waiting.outcome  # a failed message fails the bench
                together.clear()

        batched = await measure(f"  the same, {batch} a transaction", app, bodies, n, batched_message, unit="message")
        bare = await measure("bare COPY of the rows", app, bodies, n, bare_copy, unit="message")
        print(
            f"per score row ({rows / n:.1f} a message): {handler * n / rows:.1f} µs handler"
            f" ({batched * n / rows:.1f} µs with {batch} messages a transaction), {bare * n / rows:.1f} µs bare COPY"
        )
        print(f"reporting / bare COPY: {handler / bare:.1f}× the process CPU")
        async with app.sessions() as s:
            conn = await driver_connection(s)
            kept = await conn.fetchval("SELECT count(*) FROM reporting.score")
            latest = await conn.fetchval("SELECT count(DISTINCT computed_at) FROM reporting.score")
            print(f"score rows: {kept:,} (distinct computed_at: {latest})")
            await s.rollback()
    finally:
        await app.dispose()


async def run(t: Target, bodies: list[bytes], n: int, *, together: int = 1) -> None:
    """The service's handler, then the bare COPY, in the same database and process.

    ``together`` messages a transaction: handed to ``Consumer.apply_batch`` as the worker's
    batcher hands over the deliveries in hand (1: ``Consumer.apply``, one message a transaction).
    """
    app = t.app
    try:
        if t.prepare is not None:
            await t.prepare()
        consumer = Consumer(uow_factory=app.uow, inbox=t.inbox)
        sub = next(s for s in t.subscriptions if DossierEventsAccepted.routing_key in s.routing_keys)
        in_hand: list[Delivery] = []

        async def handler_message(i: int, body: bytes) -> None:
            message = IncomingMessage(f"bench-{i}", DossierEventsAccepted.routing_key, body)
            if together == 1:
                await consumer.apply(sub, message)
                return
            in_hand.append(Delivery(message, copy_context()))
            if len(in_hand) == together or i == len(bodies) - 1:
                await consumer.apply_batch(sub, in_hand)
                for waiting in in_hand:
                    await waiting.outcome  # a failed message fails the bench
                in_hand.clear()

        bare_copy = await copy_yardstick(
            app,
            "event_id text, dossier_id text, type text, occurred_at timestamptz",
            copy_rows,
            together=together,
            total=len(bodies),
        )
        handler = await measure(f"{t.service} on_dossier_events", app, bodies, n, handler_message)
        bare = await measure("bare COPY of the events", app, bodies, n, bare_copy)
        print(f"{t.service} / bare COPY: {handler / bare:.1f}× the process CPU")
        async with app.sessions() as s:
            conn = await driver_connection(s)
            for label, table in t.counts.items():
                print(f"{label} rows: {await conn.fetchval(f'SELECT count(*) FROM {table}'):,}")
            await s.rollback()
    finally:
        await app.dispose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="./sqi bench consumers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = "/tmp/con.ndjson"  # noqa: S108 (where the docstring's command writes it)
    p.add_argument("events", nargs="?", default=default, help="NDJSON from sim.cli --out")
    p.add_argument("--service", choices=[*SERVICES, "all"], default="all", help="whose consumer (default: all)")
    p.add_argument("--limit", type=int, default=0, help="only the first N dossier events")
    p.add_argument("--keep", action="store_true", help="keep the scratch databases")
    p.add_argument(
        "--kind", choices=["dossiers", "scores"], default="dossiers", help="which messages (default: dossiers)"
    )
    p.add_argument("--units", type=int, default=735, help="--kind scores: units per refresh (default 735)")
    p.add_argument("--rounds", type=int, default=4, help="--kind scores: refreshes (default 4), then a late replay")
    p.add_argument(
        "--batch",
        type=int,
        default=0,
        help="--kind scores: messages a transaction in the batched pass (default: the subscription's prefetch)",
    )
    p.add_argument(
        "--message-events",
        type=int,
        default=BATCH,
        help=f"dossier events a message (default {BATCH}, a back-fill's; live ≈ 40)",
    )
    p.add_argument(
        "--together",
        type=int,
        default=1,
        help="dossier messages a transaction, as the consumer applies deliveries in hand (default 1)",
    )
    args = p.parse_args(argv)
    if args.kind == "scores":
        return main_scores(args.units, args.rounds, keep=args.keep, batch=args.batch)
    if not Path(args.events).exists():
        print(f"{args.events} does not exist; make it with:\n  {__doc__.splitlines()[2].strip()}", file=sys.stderr)
        return 2
    lines = [line for line in Path(args.events).read_bytes().splitlines() if line.strip()]
    size, together = max(args.message_events, 1), max(args.together, 1)
    n, bodies = messages(lines, args.limit, size)
    print(f"{n:,} dossier events in {len(bodies)} messages of {size}, {together} a transaction; pid {os.getpid()}")
    for service in SERVICES if args.service == "all" else (args.service,):
        url = scratch_database_url(f"{DB}_{service}")
        asyncio.run(recreate_database(url))
        upgrade(ROOT / "services" / service / "migrations", url)  # alembic runs its own event loop
        try:
            event_loop.run(run(target(service, url), bodies, n, together=together))
        finally:
            if not args.keep:
                asyncio.run(drop_database(url))
    return 0


def main_scores(units: int, rounds: int, *, keep: bool, batch: int) -> int:
    rows, bodies = score_messages(units, max(rounds, 1))
    print(f"{len(bodies):,} scores-updated messages ({rows:,} rows); pid {os.getpid()}")
    url = scratch_database_url(f"{DB}_scores")
    asyncio.run(recreate_database(url))
    upgrade(ROOT / "services" / "reporting" / "migrations", url)
    try:
        event_loop.run(run_scores(bodies, rows, url, batch=max(batch, 0)))
    finally:
        if not keep:
            asyncio.run(drop_database(url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
