"""What a non-scoring consumer of ``ingest.dossier-events`` costs per event: prints figures.

    .venv/bin/python -m sim.cli --months 1 --end 2026-10-31 --seed 1 --scale 0.05 --out /tmp/con.ndjson
    flock /tmp/sqi-heavy.lock ./sqi bench consumers /tmp/con.ndjson

The simulator's dossier events, in messages of 500 (as ingest publishes them), go through
feedback's real consumer path (inbox row + ``on_dossier_events``, one transaction per message)
into a scratch database, with no broker. Then the same messages go through the yardstick: parse
the body and ``COPY`` one row per event (event id, dossier id, type, occurred_at) into a plain
table, one transaction per message. For each it prints the process CPU per event (this Python
process: what competes with scoring on a 2-core machine), the PostgreSQL backends' CPU per event
(read from /proc, so only with a local server), and events/s of wall time; then the handler's
ratio to the bare COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.feedback.adapters.tables import inbox  # noqa: E402
from services.feedback.bootstrap import Feedback, bootstrap  # noqa: E402
from services.feedback.settings import FeedbackSettings  # noqa: E402
from services.feedback.subscriptions import SUBSCRIPTIONS  # noqa: E402
from shared.contracts import DossierEventsAccepted  # noqa: E402
from shared.db import driver_connection  # noqa: E402
from shared.messaging.consumer import Consumer  # noqa: E402
from shared.messaging.topology import IncomingMessage  # noqa: E402
from shared.migrations import upgrade  # noqa: E402
from sqi_cli.scratch import drop_database, recreate_database, scratch_database_url  # noqa: E402

DB = "sqi_bench_consumers"
BATCH = 500


def backend_cpu(pids: list[int]) -> float:
    """User + system CPU seconds of PostgreSQL backends (a local server's /proc), 0 when unreadable."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def backend_pids(app: Feedback) -> list[int]:
    async with app.sessions() as s:
        conn = await driver_connection(s)
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        await s.rollback()
    return [r["pid"] for r in rows]


async def measure(
    label: str, app: Feedback, bodies: list[bytes], events: int, apply: Callable[[int, bytes], Awaitable[None]]
) -> float:
    """Apply every message; print and return the process CPU µs per event."""
    pids = await backend_pids(app)  # the pool's connections: warm them before counting
    cpu0, pg0, t0 = time.process_time(), backend_cpu(pids), time.perf_counter()
    for n, body in enumerate(bodies):
        await apply(n, body)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    pg = backend_cpu(await backend_pids(app)) - pg0
    per_event = cpu / events * 1e6
    print(
        f"{label:<28} {per_event:6.1f} µs CPU/event (process), {pg / events * 1e6:6.1f} µs (PostgreSQL), "
        f"{events / wall:9,.0f} events/s  [{cpu:.2f} s CPU, {wall:.2f} s wall]"
    )
    return per_event


_COPY_TABLE = "bench_copy"


def copy_rows(body: bytes) -> list[tuple[Any, ...]]:
    """The yardstick's parse: one row per event, nothing checked beyond what COPY needs."""
    rows = []
    for e in orjson.loads(body)["events"]:
        rows.append((e["event_id"], e["data"].get("dossier_id"), e["type"], datetime.fromisoformat(e["occurred_at"])))
    return rows


async def run(args: argparse.Namespace, url: str, lines: list[bytes]) -> None:
    dossier_events = [e for e in map(orjson.loads, lines) if str(e.get("type", "")).startswith("dossier.")]
    if args.limit:
        dossier_events = dossier_events[: args.limit]
    bodies = [orjson.dumps({"events": dossier_events[i : i + BATCH]}) for i in range(0, len(dossier_events), BATCH)]
    n = len(dossier_events)
    print(f"{n:,} dossier events in {len(bodies)} messages of {BATCH} (one transaction each); pid {os.getpid()}")
    app = bootstrap(FeedbackSettings(database_url=url, environment="test"))
    try:
        consumer = Consumer(uow_factory=app.uow, inbox=inbox)
        sub = next(s for s in SUBSCRIPTIONS if DossierEventsAccepted.routing_key in s.routing_keys)

        async def feedback_message(i: int, body: bytes) -> None:
            await consumer.apply(sub, IncomingMessage(f"bench-{i}", DossierEventsAccepted.routing_key, body))

        async def bare_copy(_: int, body: bytes) -> None:
            async with app.uow() as uow:
                conn = await driver_connection(uow.session)
                await conn.copy_records_to_table(_COPY_TABLE, records=copy_rows(body), schema_name="public")

        async with app.uow() as uow:
            conn = await driver_connection(uow.session)
            await conn.execute(
                f"CREATE TABLE public.{_COPY_TABLE}"
                " (event_id text, dossier_id text, type text, occurred_at timestamptz)"
            )
        handler = await measure("feedback on_dossier_events", app, bodies, n, feedback_message)
        bare = await measure("bare COPY of the events", app, bodies, n, bare_copy)
        print(f"feedback / bare COPY: {handler / bare:.1f}× the process CPU")
        async with app.sessions() as s:
            conn = await driver_connection(s)
            kept = await conn.fetchval("SELECT count(*) FROM feedback.dossier_unit")
            await s.rollback()
        print(f"dossier_unit rows: {kept:,}")
    finally:
        await app.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="./sqi bench consumers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = "/tmp/con.ndjson"  # noqa: S108 (where the docstring's command writes it)
    p.add_argument("events", nargs="?", default=default, help="NDJSON from sim.cli --out")
    p.add_argument("--limit", type=int, default=0, help="only the first N dossier events")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = p.parse_args(argv)
    if not Path(args.events).exists():
        print(f"{args.events} does not exist; make it with:\n  {__doc__.splitlines()[2].strip()}", file=sys.stderr)
        return 2
    lines = [line for line in Path(args.events).read_bytes().splitlines() if line.strip()]
    url = scratch_database_url(DB)
    asyncio.run(recreate_database(url))
    upgrade(ROOT / "services" / "feedback" / "migrations", url)  # alembic runs its own event loop
    try:
        asyncio.run(run(args, url, lines))
    finally:
        if not args.keep:
            asyncio.run(drop_database(url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
