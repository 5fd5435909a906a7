"""``./sqi bench ingest``: POST /api/v1/events with 5,000-event NDJSON batches, through the gateway and direct.

Starts the gateway, the ingest API and the ingest worker (its outbox relay) on a scratch
database (``sqi_bench_ingest``) with the ``bench.`` bus prefix; creates the simulator's offices
and keys through the gateway; then, for 1, 2 and 4 concurrent requests, sends fresh batches
(every run renames its event ids, so nothing is a duplicate) and reports accepted events/s and
request latency, first through the gateway, then at the ingest service directly (the
difference is the gateway's cost). CPU seconds per process show where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import date

import httpx
import orjson

from bench.common import bench_platform, cpu_seconds, percentile, print_table, say, scratch
from shared.identity import CLIENT_ADDRESS_HEADER, INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal
from shared.settings import CommonSettings

BATCH = 5000


@dataclass
class RunResult:
    target: str
    concurrency: int
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    drain_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


Batches = list[tuple[str, list[bytes]]]


def make_batches(*, days: int, seed: int, batch: int = BATCH) -> tuple[list[tuple[str, bytes]], Batches, object]:
    """The catalogue lines (sent once, first) and full batches of ``batch`` events per source."""
    from sim.clock import DAY, day_of
    from sim.generate import Config, Generator
    from sim.world import build_world

    world = build_world(seed)
    end = date(2026, 10, 31)
    t_end = (day_of(end) + 1) * DAY - 1
    t_start = (day_of(end) - days + 1) * DAY
    gen = Generator(world, Config(seed=seed, t_start=t_start, t_end=t_end))
    catalogue = list(gen.catalogue())
    buffers: dict[str, list[bytes]] = {}
    batches: list[tuple[str, list[bytes]]] = []
    first, last = t_start // DAY, t_end // DAY
    for day in range(first, last + 1):
        gen.generate_day(day)
        bucket = gen._buckets.pop(day, [])  # the simulator's own day order (it is not ours to change)
        bucket.sort(key=lambda x: x[0])
        for _, source, line in bucket:
            buf = buffers.setdefault(source, [])
            buf.append(line)
            if len(buf) == batch:
                batches.append((source, buf))
                buffers[source] = []
    return catalogue, batches, world


def renamed(lines: list[bytes], tag: str) -> bytes:
    """The same events under new ids (so a run is never a duplicate of another)."""
    out = []
    for line in lines:
        record = orjson.loads(line)
        record["event_id"] = f"{tag}-{record['event_id']}"
        out.append(orjson.dumps(record))
    return b"\n".join(out) + b"\n"


async def prepare(gateway: str, world: object, catalogue: list[tuple[str, bytes]]) -> dict[str, str]:
    from gateway.jwt_auth import mint_dev_token
    from gateway.settings import GatewaySettings
    from sim.send import Sender

    token = mint_dev_token(GatewaySettings(), sub="bench", role="admin", unit="CT")
    sender = Sender(gateway, admin_token=token, concurrency=4)
    try:
        await sender.ensure_world(world)  # type: ignore[arg-type]
        await sender.send_lines(catalogue)
    finally:
        await sender.aclose()
    return sender.keys


async def run_once(
    *,
    url: str,
    headers_for: dict[str, dict[str, str]],
    bodies: list[tuple[str, bytes]],
    concurrency: int,
    result: RunResult,
) -> None:
    queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    for _ in range(concurrency):
        queue.put_nowait(None)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0), limits=limits) as client:

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                source, body = item
                t0 = time.perf_counter()
                r = await client.post(url, content=body, headers=headers_for[source])
                result.latencies.append(time.perf_counter() - t0)
                if r.status_code not in (200, 422):
                    raise RuntimeError(f"POST {url}: {r.status_code} {r.text[:300]}")
                answer = orjson.loads(r.content)
                result.accepted += int(answer["accepted"])
                result.duplicates += int(answer["duplicates"])
                result.rejected += len(answer["rejected"])
                result.events += body.count(b"\n") + (not body.endswith(b"\n"))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - t0


async def outbox_pending(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL"))
    finally:
        await conn.close()


async def wait_drained(dsn: str, limit_s: float = 300) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        if not await outbox_pending(dsn):
            break
        await asyncio.sleep(0.2)
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="./sqi bench ingest", description=__doc__)
    p.add_argument("--requests", type=int, default=16, help="requests per run (default 16)")
    p.add_argument(
        "--batch", type=int, default=BATCH, help="events per request (default 5,000; a live integrator sends tens)"
    )
    p.add_argument("--concurrency", default="1,2,4", help="concurrent requests per run (default 1,2,4)")
    p.add_argument("--days", type=int, default=6, help="simulated days to draw batches from (default 6)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--targets", default="gateway,direct", help="gateway, direct or both (default both)")
    args = p.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    targets = [t.strip() for t in args.targets.split(",")]

    say(f"bench ingest: generating {args.days} simulated days…")
    catalogue, batches, world = make_batches(days=args.days, seed=args.seed, batch=args.batch)
    if len(batches) < args.requests:
        raise SystemExit(f"only {len(batches)} full batches; raise --days")
    batches = batches[: args.requests]
    results: list[RunResult] = []
    with scratch(f"sqi_bench_ingest{os.environ.get('SQI_TEST_DB_SUFFIX', '')}") as settings:
        platform = bench_platform(services=("ingest",))
        platform.start()
        try:
            if not platform.wait_ready(90):
                raise RuntimeError("the platform did not become ready")
            keys = asyncio.run(prepare(platform.gateway, world, catalogue))
            common = CommonSettings()
            gw_headers = {
                s: {"Authorization": f"Bearer {k}", "Content-Type": "application/x-ndjson"} for s, k in keys.items()
            }
            direct_headers = {
                s: {
                    "Content-Type": "application/x-ndjson",
                    PRINCIPAL_HEADER: encode_principal(
                        Principal(kind="integrator", sub=f"bench:{s}", source=s, units=tuple(world.sources[s]))  # type: ignore[attr-defined]
                    ),
                    INTERNAL_TOKEN_HEADER: common.internal_token,
                    CLIENT_ADDRESS_HEADER: "127.0.0.1",
                }
                for s in keys
            }
            run_no = 0
            for target in targets:
                url = (platform.gateway if target == "gateway" else platform.url_of("ingest")) + "/api/v1/events"
                headers = gw_headers if target == "gateway" else direct_headers
                for c in levels:
                    run_no += 1
                    bodies = [(s, renamed(lines, f"r{run_no}")) for s, lines in batches]
                    result = RunResult(target, c)
                    pids = platform.pids()
                    before = {n: cpu_seconds(pid) for n, pid in pids.items()}
                    say(f"bench ingest: {target}, {c} concurrent, {len(bodies)} × {args.batch:,} events…")
                    asyncio.run(run_once(url=url, headers_for=headers, bodies=bodies, concurrency=c, result=result))
                    result.drain_s = asyncio.run(wait_drained(settings.asyncpg_dsn))
                    result.cpu = {n: cpu_seconds(pid) - before[n] for n, pid in pids.items()}
                    results.append(result)
        finally:
            platform.stop()
    rows = []
    for r in results:
        rows.append(
            [
                r.target,
                r.concurrency,
                r.events,
                r.accepted,
                r.rejected + r.duplicates,
                r.accepted / r.seconds,
                percentile(r.latencies, 50) * 1000,
                percentile(r.latencies, 99) * 1000,
                r.drain_s,
                " ".join(f"{n.split('-')[0][:2]}{n.split('-')[-1][:1]}={v:.1f}" for n, v in r.cpu.items()),
            ]
        )
    print_table(
        f"ingest: POST /api/v1/events, {args.batch:,}-event NDJSON batches ({os.cpu_count()} cores)",
        ["target", "conc.", "events", "accepted", "not acc.", "events/s", "p50 ms", "p99 ms", "relay lag s", "CPU s"],
        rows,
    )
    print("CPU s: ina = ingest API, inw = ingest worker (relay), gaa = gateway, during the run")
    return 0
