"""``./sqi bench gateway``: what one proxied read costs in the gateway, beside the bare upstream.

Starts a trivial upstream (a raw ASGI app under uvicorn answering a fixed JSON body, ~30 KB by
default, to every path) and the real gateway in front of it, both as separate processes the
way ``./sqi up`` starts them, with every service URL pointing at the upstream. Then sends GETs
of ``/api/v1/reports/ranking`` (a reporting route) straight to the upstream and through the
gateway, anonymous and with a staff JWT, one at a time and ``--concurrency`` at a time, and
prints per case: latency p50 / p99 and the CPU time each process spent per request (from
``/proc/<pid>/stat``): on a shared machine CPU time is the steadier figure, latency is not.
The last column is this process, the client: a plain ``httpx.AsyncClient`` (not instrumented),
i.e. what httpx alone costs for the same GET — the gateway pays that and its server side.
``--compare CHECKOUT`` runs a second gateway from another checkout (e.g. a worktree of main)
beside this one, case by case, so before and after meet the same load on the machine.

The gateway needs no database for these reads (anonymous and JWT callers never touch it), so
nothing is created or migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import cpu_seconds, percentile, print_table, say
from sqi_cli.platform import SERVICES, Platform, gateway_command
from sqi_cli.scratch import free_port_block

PATH = "/api/v1/reports/ranking"
QUERY = "period=2026-10&level=province"
BODY_BYTES_ENV = "SQI_BENCH_UPSTREAM_BYTES"

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _body(size: int) -> bytes:
    """A ranking-shaped JSON document of about ``size`` bytes."""
    row = {"unit_code": "P00", "name": "Thuế tỉnh mẫu", "total": 87.25, "grade": "good", "rank": 1, "dossiers": 412}
    rows: list[dict[str, object]] = []
    while len(orjson.dumps({"items": rows})) < size:
        rows.append({**row, "unit_code": f"P{len(rows):02d}", "rank": len(rows) + 1})
    return orjson.dumps({"period": "2026-10", "items": rows})


def upstream_app() -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """The upstream (``uvicorn --factory bench.gateway_hop:upstream_app``): one fixed body, any path."""
    body = _body(int(os.environ.get(BODY_BYTES_ENV, "30000")))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def _run(base: str, headers: dict[str, str], requests: int, concurrency: int, expected_bytes: int) -> list[float]:
    """Latencies (ms) of ``requests`` GETs, ``concurrency`` in flight; any wrong answer stops the bench."""
    latencies: list[float] = []
    left = [requests]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:

        async def reader() -> None:
            while left[0] > 0:
                left[0] -= 1
                t0 = time.perf_counter()
                response = await client.get(PATH, params=QUERY)
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200 or len(response.content) != expected_bytes:
                    raise RuntimeError(f"{base}: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(reader() for _ in range(concurrency)))
    return latencies


def _case(
    target: str,
    url: str,
    auth: str,
    headers: dict[str, str],
    concurrency: int,
    args: argparse.Namespace,
    pids: dict[str, int],
) -> list[object]:
    """One row: ``target`` is ``direct`` or the name of the gateway process the requests go through."""
    asyncio.run(_run(url, headers, args.warmup, concurrency, args.expected_bytes))
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0, client0 = time.perf_counter(), time.process_time()
    latencies = asyncio.run(_run(url, headers, args.requests, concurrency, args.expected_bytes))
    wall, client_cpu = time.perf_counter() - t0, time.process_time() - client0
    cpu_us = {name: (cpu_seconds(pid) - before[name]) / args.requests * 1e6 for name, pid in pids.items()}
    mode = "sequential" if concurrency == 1 else f"{concurrency} at a time"
    return [
        target,
        auth,
        mode,
        percentile(latencies, 50),
        percentile(latencies, 99),
        args.requests / wall,
        cpu_us.get(target, "-"),
        cpu_us["upstream"],
        client_cpu / args.requests * 1e6,
    ]


def _spawn_compared(platform: Platform, checkout: Path, port: int) -> None:
    """The gateway of another checkout (its own ``.venv`` if it has one) in front of the same upstream."""
    venv_python = checkout / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    argv = gateway_command(python, port)
    # Run from the checkout, so its packages come first on sys.path (``python -m`` puts the cwd there).
    process = subprocess.Popen(argv, cwd=checkout, env=platform.env, start_new_session=True)
    platform.processes.append((f"gateway {checkout.name}", process))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./sqi bench gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per case")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests before each case")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight in the concurrent cases")
    parser.add_argument("--body-bytes", type=int, default=30_000, help="size of the upstream's answer")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every case this many times")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="also run the gateway of another checkout (e.g. a worktree of main), case by case beside this one",
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("SQI_LOG_LEVEL", "WARNING")
    os.environ[BODY_BYTES_ENV] = str(args.body_bytes)
    args.expected_bytes = len(_body(args.body_bytes))
    base = free_port_block(len(SERVICES) + 2, start=29_000)
    platform = Platform(base, services=(), workers=())
    upstream_url = platform.url_of("reporting")
    upstream_port = upstream_url.rsplit(":", 1)[1]
    # Every service URL of the gateway names the upstream (the reporting route is the one used).
    platform.env.update({f"SQI_{name.upper()}_URL": upstream_url for name in SERVICES})
    python = sys.executable
    platform.spawn(
        "upstream",
        [python, "-m", "uvicorn", "--factory", "--host", "127.0.0.1", "--port", upstream_port,
         "--log-level", "warning", "bench.gateway_hop:upstream_app"],
    )  # fmt: skip
    platform.start()
    targets = [("direct", upstream_url), ("gateway", platform.gateway)]
    if args.compare:
        compared = f"http://127.0.0.1:{base + len(SERVICES) + 1}"
        _spawn_compared(platform, args.compare.resolve(), base + len(SERVICES) + 1)
        targets.append((f"gateway {args.compare.resolve().name}", compared))
    try:
        if not platform.wait_ready(60) or not all(_wait(url + "/healthz", 30) for _, url in targets):
            say("a gateway or the upstream did not start")
            return 3
        from gateway.jwt_auth import mint_dev_token
        from gateway.settings import GatewaySettings

        token = mint_dev_token(GatewaySettings(), sub="bench", role="leader", unit="CT")
        callers = {"anonymous": {}, "staff JWT": {"Authorization": f"Bearer {token}"}}
        pids = platform.pids()
        say(f"processes {pids}; {args.expected_bytes:,} B answers")
        rows: list[list[object]] = []
        for _ in range(args.rounds):
            for concurrency in (1, args.concurrency):
                for auth, headers in callers.items():
                    for target, url in targets:
                        rows.append(_case(target, url, auth, headers, concurrency, args, pids))
                        say(f"done: {rows[-1][:3]}")
        print_table(
            f"GET {PATH}?{QUERY}: {args.requests:,} requests per case, {args.expected_bytes:,} B answer",
            [
                "target",
                "caller",
                "mode",
                "p50 ms",
                "p99 ms",
                "req/s",
                "gateway CPU µs/req",
                "upstream CPU µs/req",
                "client CPU µs/req",
            ],
            rows,
        )
    finally:
        platform.stop()
    return 0


def _wait(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
