"""``./sqi bench backfill``: the simulator's whole-country month through the gateway (≥ 1 M events).

Starts the whole platform (gateway, every service's API and worker — scoring consumes while
the back-fill runs, as it would in production) on a scratch database (``sqi_bench_backfill``)
with the ``bench.`` bus prefix, runs ``python -m sim.cli --months 1 --end 2026-10-31 --seed 1``
against the gateway, and prints events/s and wall time; then follows the consumers' queues until
they drain (or ``--drain-limit`` seconds) to show how far scoring lags behind ingest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import threading
import time

from bench.common import all_queues, bench_platform, cpu_seconds, print_table, queue_depths, say, scratch
from shared.settings import CommonSettings


def _follow(stream: object, marks: dict[str, float], tail: list[str]) -> None:
    buf = b""
    while chunk := stream.read1(4096):  # type: ignore[attr-defined]
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if line.startswith("simulate: history") and "history" not in marks:
                marks["history"] = time.perf_counter()
            if line.startswith("simulate: sent") and "sent" not in marks:
                marks["sent"] = time.perf_counter()
            tail.append(line)
            del tail[:-50]


def _outbox_pending(settings: CommonSettings) -> int:
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(settings.asyncpg_dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL"))
        finally:
            await conn.close()

    return asyncio.run(count())


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="./sqi bench backfill", description=__doc__)
    p.add_argument("--months", type=int, default=1)
    p.add_argument("--end", default="2026-10-31")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=4, help="the simulator's concurrent requests (default 4)")
    p.add_argument("--drain-limit", type=float, default=900, help="seconds to follow the queues afterwards")
    args = p.parse_args(argv)
    from gateway.jwt_auth import mint_dev_token
    from gateway.settings import GatewaySettings

    sim_argv = [
        sys.executable,
        "-m",
        "sim.cli",
        "--months",
        str(args.months),
        "--end",
        args.end,
        "--seed",
        str(args.seed),
        "--scale",
        str(args.scale),
        "--concurrency",
        str(args.concurrency),
    ]
    with scratch("sqi_bench_backfill") as settings:
        queues = all_queues()
        platform = bench_platform()
        platform.start()
        try:
            if not platform.wait_ready(90):
                raise RuntimeError("the platform did not become ready")
            token = mint_dev_token(GatewaySettings(), sub="bench", role="admin", unit="CT")
            env = {**os.environ, "SQI_ADMIN_TOKEN": token}
            cmd = [*sim_argv, "--gateway", platform.gateway]
            say("bench backfill: " + " ".join(cmd[1:]))
            pids = platform.pids()
            cpu0 = {n: cpu_seconds(pid) for n, pid in pids.items()}
            marks: dict[str, float] = {}
            tail: list[str] = []
            t0 = time.perf_counter()
            sim = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, start_new_session=True)
            reader = threading.Thread(target=_follow, args=(sim.stderr, marks, tail), daemon=True)
            reader.start()
            peak: dict[str, int] = {}
            samples: list[tuple[float, dict[str, int]]] = []
            while sim.poll() is None:
                time.sleep(5)
                platform.check_alive()
                depths = asyncio.run(queue_depths(settings, queues))
                samples.append((time.perf_counter() - t0, depths))
                for q, d in depths.items():
                    peak[q] = max(peak.get(q, 0), d)
            t_done = time.perf_counter()
            reader.join(timeout=5)
            cpu_sim = {n: cpu_seconds(pid) - cpu0[n] for n, pid in pids.items()}
            if sim.returncode != 0:
                say("\n".join(tail))
                raise SystemExit(f"the simulator failed with status {sim.returncode}")
            summary = next((line for line in tail if line.startswith("simulate: sent")), "")
            match = re.search(
                r"sent ([\d,]+) events: accepted ([\d,]+), duplicates ([\d,]+), rejected ([\d,]+)", summary
            )
            sent, accepted, dups, rejected = (int(g.replace(",", "")) for g in match.groups()) if match else (0,) * 4
            say(f"bench backfill: {summary}; following the queues…")
            drained_at = None
            last: dict[str, int] = {}
            while time.perf_counter() - t_done < args.drain_limit:
                last = asyncio.run(queue_depths(settings, queues))
                for q, d in last.items():
                    peak[q] = max(peak.get(q, 0), d)
                if not any(d > 0 for d in last.values()) and _outbox_pending(settings) == 0:
                    drained_at = time.perf_counter()
                    break
                time.sleep(2)
            cpu_all = {n: cpu_seconds(pid) - cpu0[n] for n, pid in pids.items()}
        finally:
            platform.stop()
    sending = marks.get("sent", t_done) - marks.get("history", t0)
    total = t_done - t0
    print_table(
        "backfill: simulator month through the gateway (whole platform running, scoring consuming)",
        ["what", "figure"],
        [
            ["command", " ".join(["python", *sim_argv[1:]]) + " --gateway <bench gateway>"],
            ["events sent / accepted", f"{sent:,} / {accepted:,} (duplicates {dups:,}, rejected {rejected:,})"],
            ["history phase (generate + send)", f"{sending:,.1f} s → {accepted / max(sending, 1e-9):,.0f} events/s"],
            ["simulator wall time (incl. offices, keys)", f"{total:,.1f} s → {accepted / total:,.0f} events/s"],
            [
                "consumers drained after the simulator",
                f"{drained_at - t_done:,.1f} s" if drained_at else f"not within {args.drain_limit:.0f} s: {last}",
            ],
            ["peak queue depth (messages)", ", ".join(f"{q}={d:,}" for q, d in peak.items() if d)],
            ["CPU s during send", " ".join(f"{n}={v:.0f}" for n, v in cpu_sim.items() if v >= 1)],
            ["CPU s until drained", " ".join(f"{n}={v:.0f}" for n, v in cpu_all.items() if v >= 1)],
        ],
    )
    if samples:
        print("\nqueue depth over time (s: messages per queue):")
        for t, depths in samples[:: max(1, len(samples) // 20)]:
            print(f"  {t:6.0f}s  " + " ".join(f"{q}={d}" for q, d in depths.items() if d))
    return 0
