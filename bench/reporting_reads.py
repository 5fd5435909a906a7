"""``./sqi bench reporting``: p50/p99 of ``GET /`` and the ranking API while events stream in.

On a scratch database it starts the gateway and reporting (API and worker), loads a
whole-country month into reporting's read model through the broker (35 provincial offices,
``--locals`` local offices under each, scores of the month and the month before, as scoring
publishes them), then times sequential reads through the gateway while a background publisher
keeps streaming dossier batches and score updates at the given rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import orjson

from bench.common import PREFIX, ROOT, bench_platform, percentile, print_table, say, scratch
from shared.contracts.scoring import ScoresUpdated
from shared.settings import CommonSettings

MONTH, BEFORE = "2026-10", "2026-09"


def _units(locals_per_province: int) -> tuple[list[str], list[dict[str, Any]]]:
    with (ROOT / "data" / "reference" / "units.csv").open(encoding="utf-8") as fh:
        provinces = [r["code"] for r in csv.DictReader(fh) if r["level"] == "province"]
    local = [
        {"code": f"{p}.B{i:02d}", "name": f"Thuế cơ sở {i} {p}", "level": "local", "parent_code": p}
        for p in provinces
        for i in range(1, locals_per_province + 1)
    ]
    return provinces, local


def _unit_score(code: str, i: int) -> dict[str, Any]:
    total = 60 + (i * 7919 % 400) / 10
    return {
        "unit_code": code,
        "scores": {
            "tax-2025": {
                "total": total,
                "grade": "excellent" if total >= 90 else "good" if total >= 80 else "fair",
                "rank": i % 40 + 1,
                "dossiers": 400,
                "groups": {"G1": 15, "G2": 17, "G3": 18, "G4": 17, "G5": round(total - 67, 2)},
                "indicators": [
                    {"id": "2.1", "numerator": 380, "denominator": 400, "ratio": 95, "points": 19, "max_points": 20}
                ],
            }
        },
    }


def _scores(period: str, units: list[tuple[str, int]]) -> list[tuple[str, str, bytes]]:
    """``scores-updated`` messages for (unit, step) pairs, ``MAX_UNITS`` a message as scoring sends them."""
    bodies = ScoresUpdated.bodies(
        period=period, computed_at=datetime.now(UTC), units=[_unit_score(c, i) for c, i in units]
    )
    return [("scoring.events", ScoresUpdated.routing_key, body) for body in bodies]


def _dossiers(codes: list[str], n: int) -> bytes:
    now = datetime.now(UTC)
    events = []
    for k in range(n):
        d = uuid.uuid4().hex
        events.append(
            {
                "source": "bench-feed",
                "event_id": d,
                "type": "dossier.received",
                "occurred_at": (now - timedelta(hours=1)).isoformat(),
                "data": {
                    "dossier_id": d,
                    "unit_code": codes[k % len(codes)],
                    "procedure_code": "T.DKT.01",
                    "officer_id": f"cb-{k % 50}",
                },
            }
        )
    return orjson.dumps({"events": events, "accepted_at": now.isoformat()})


async def _publish(settings: CommonSettings, items: list[tuple[str, str, bytes]]) -> None:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        for exchange, key, body in items:
            if exchange not in exchanges:
                exchanges[exchange] = await channel.declare_exchange(
                    PREFIX + exchange, aio_pika.ExchangeType.TOPIC, durable=True
                )
            await exchanges[exchange].publish(
                aio_pika.Message(body, message_id=uuid.uuid4().hex, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=key,
            )


async def _stream(settings: CommonSettings, codes: list[str], stop: asyncio.Event, rates: tuple[float, float]) -> int:
    """Dossier batches (500 events) and score updates per second until ``stop``."""
    batches_per_s, scores_per_s = rates
    sent = 0
    i = 0
    while not stop.is_set():
        items: list[tuple[str, str, bytes]] = [
            ("ingest.events", "ingest.dossier-events.v1", _dossiers(codes, 500)) for _ in range(int(batches_per_s))
        ]
        items += _scores(MONTH, [(codes[(i + k) % len(codes)], i + k) for k in range(int(scores_per_s))])
        i += int(scores_per_s)
        await _publish(settings, items)
        sent += len(items)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    return sent


async def _scores_loaded(settings: CommonSettings) -> int:
    import asyncpg

    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM reporting.score WHERE period = $1", MONTH))
    finally:
        await conn.close()


async def _measure(
    base: str, token: str, requests: int, slow: list[tuple[float, float, str]], seconds: float = 0.0
) -> dict[str, list[float]]:
    """Sequential rounds of the three reads, at least ``requests`` of them and for at least
    ``seconds``; each duration (ms), and into ``slow`` every (wall-clock time, ms, read) — the
    tail's times show what it coincides with."""
    out: dict[str, list[float]] = {"GET /": [], "GET /api/v1/reports/ranking": [], "GET /ranking/P01": []}
    until = time.monotonic() + seconds
    rounds = 0
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while rounds < requests or time.monotonic() < until:
            rounds += 1
            for label in out:
                path = label.removeprefix("GET ")
                headers = {"Authorization": f"Bearer {token}"} if "api" in path else {}
                params = {"period": MONTH, "level": "local"} if "api" in path else {}
                t0 = time.perf_counter()
                r = await client.get(path, headers=headers, params=params)
                out[label].append(ms := (time.perf_counter() - t0) * 1000)
                slow.append((time.time(), ms, label))
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
    return out


async def _run(settings: CommonSettings, base: str, args: argparse.Namespace) -> None:
    provinces, local = _units(args.locals)
    codes = provinces + [u["code"] for u in local]
    say(f"loading {len(codes)} units × 2 months of scores through the broker…")
    await _publish(settings, [("ingest.events", "ingest.units-changed.v1", orjson.dumps({"units": local}))])
    items = [item for p in (BEFORE, MONTH) for item in _scores(p, [(c, i) for i, c in enumerate(codes)])]
    await _publish(settings, items)
    deadline = time.monotonic() + 300
    while await _scores_loaded(settings) < len(codes):
        if time.monotonic() > deadline:
            raise RuntimeError("reporting did not load the month in 5 minutes")
        await asyncio.sleep(0.5)
    from gateway.jwt_auth import mint_dev_token
    from gateway.settings import GatewaySettings

    token = mint_dev_token(GatewaySettings(), sub="bench", role="leader", unit="CT")
    await _measure(base, token, 20, [])  # warm-up
    stop = asyncio.Event()
    streamer = asyncio.create_task(_stream(settings, codes, stop, (args.batches_per_s, args.scores_per_s)))
    t0 = time.monotonic()
    every: list[tuple[float, float, str]] = []
    timings = await _measure(base, token, args.requests, every, seconds=args.seconds)
    elapsed = time.monotonic() - t0
    stop.set()
    sent = await streamer
    rows = [(path, len(v), percentile(v, 50), percentile(v, 99), max(v)) for path, v in timings.items()]
    print_table(
        f"reporting reads through the gateway: {len(codes)} units loaded, {sent} messages streamed in {elapsed:.0f} s",
        ["request", "n", "p50 ms", "p99 ms", "max ms"],
        rows,
    )
    if args.slowest:
        say("slowest reads (UTC time, ms, read):")
        for at, ms, label in sorted(every, key=lambda x: -x[1])[: args.slowest]:
            say(f"  {datetime.fromtimestamp(at, UTC):%H:%M:%S.%f}  {ms:7.1f}  {label}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./sqi bench reporting", description=__doc__)
    parser.add_argument("--locals", type=int, default=20, help="local offices per province (default 20: ~700)")
    parser.add_argument("--requests", type=int, default=300, help="sequential rounds of the three reads")
    parser.add_argument(
        "--seconds",
        type=float,
        default=30,
        help="keep reading at least this long (default 30: 300 rounds alone took 2 s on a fast machine, "
        "too short for the stream to matter)",
    )
    parser.add_argument("--batches-per-s", type=float, default=4, help="dossier batches (500 events) per second")
    parser.add_argument("--scores-per-s", type=float, default=50, help="score updates per second")
    parser.add_argument("--slowest", type=int, default=0, help="list the N slowest reads with their times")
    args = parser.parse_args(argv)
    with scratch(f"sqi_bench_reporting{os.environ.get('SQI_TEST_DB_SUFFIX', '')}") as settings:
        platform = bench_platform(("reporting",))
        platform.start()
        try:
            if not platform.wait_ready(90):
                raise RuntimeError("the platform did not become ready")
            asyncio.run(_run(settings, platform.gateway, args))
        finally:
            platform.stop()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
