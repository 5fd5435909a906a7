"""``./sqi bench [NAME]``: run one benchmark (or all) and print their tables."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module

BENCHMARKS: dict[str, str] = {
    "ingest": "POST /api/v1/events with 5,000-event batches, 1/2/4 concurrent, gateway vs direct",
    "relay": "outbox rows published per second with publisher confirms",
    "backfill": "the simulator's whole-country month through the gateway (≥ 1 M events)",
    "reporting": "p50/p99 of GET / and the ranking API with a whole-country month loaded, events streaming",
    "bare": "the bare pipeline (batches → COPY → publish → consume): the yardstick for end to end",
    "live": "a loaded month, then 500/2,000/5,000 events/s with 20 readers: freshness, reads, ratio to bare",
    "consumers": "dossier consumers (--together: live-like batches; --kind scores): CPU µs per event vs COPY",
    "chaos": "kill and restart every process (and the broker, the database) under a stream; nothing lost",
    "gateway": "one proxied GET through the gateway vs straight to a trivial upstream: p50/p99, CPU µs/request",
    "units": "scoring every office of a refresh in process (points, breakdown figures, digest): CPU per refresh",
    "judging": "folding and judging dossiers in process (first judging, live re-judging): CPU µs per dossier",
    "pg-activity": "PostgreSQL's active statements and wait events, sampled every 10 ms (run beside a bench)",
}
#: Benchmarks whose module is not ``bench.<name>``.
MODULES: dict[str, str] = {
    "bare": "bare_pipeline",
    "reporting": "reporting_reads",
    "gateway": "gateway_hop",
    "units": "unit_scores",
    "pg-activity": "pg_activity",
}


def _usage() -> str:
    lines = ["usage: ./sqi bench [NAME] [options]   (./sqi bench list; ./sqi bench NAME --help)", "", "benchmarks:"]
    lines += [f"  {name:<11} {text}" for name, text in BENCHMARKS.items()]
    lines.append("\nwithout NAME: ingest and relay (backfill takes minutes: ask for it by name)")
    lines.append("heavy: run as `flock /tmp/sqi-heavy.lock ./sqi bench NAME` on shared machines")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help", "help", "list"):
        print(_usage())
        return 0
    if argv and argv[0] not in BENCHMARKS:
        print(f"unknown benchmark {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    names = [argv[0]] if argv else ["ingest", "relay"]
    rest = argv[1:]
    status = 0
    for name in names:
        run: Callable[[list[str]], int] = import_module(f"bench.{MODULES.get(name, name)}").main
        status = status or run(rest)
    return status
