"""``./sqi bench live``: a whole-country month loaded, then live load with readers, seen from outside.

1. Starts the platform (gateway, every API and worker, as ``./sqi up --no-sim`` runs them) on a
   scratch database (``sqi_bench_live`` + ``SQI_TEST_DB_SUFFIX``) and the ``bench.`` bus prefix —
   or uses a running one with ``--url``.
2. Loads history: ``python -m sim.cli --days 28 --scale 1`` ending now (``--days``/``--scale`` shrink
   it), through the gateway. **End to end** = events accepted / (the simulator's first request →
   nothing left on the way — outboxes published, scoring's and feedback's queues empty, no
   dossier waiting to be judged — and a marker sent after that counted in the scores).
3. Runs the **bare pipeline** (``bench/bare_pipeline.py``) on the same Postgres and RabbitMQ, the
   platform idle, and prints end to end as a share of it.
4. For each rate (500, 2,000, 5,000 events/s by default) streams ``sim.cli --rate R`` for
   ``--phase-seconds`` while 20 readers read the ranking, a breakdown, a shortfall dossier list
   and the public page (``--mix``), each starting a request every ``--read-pace`` s (1 s: people
   at dashboards; 0: back to back, a saturation test), and a marker probe measures **freshness**: HTTP 200 of an event
   → the score that counts it (``bench/probes.py`` says exactly what is observed and how).

Everything is bounded: each phase, the settle after it, the load and the catch-up have deadlines.
Output: tables, then one JSON line (``{"bench": "live", …}``) for ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform as host
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bench import cpu_share
from bench.bare_pipeline import BareOptions, BareResult, run_bare
from bench.common import bench_platform, print_table, queue_depths, say, scoring_worker_metrics, scratch
from bench.probes import DEFAULT_MIX, MarkerProbe, Readers, ensure_marker_unit, parse_mix, period_now, summarise_reads
from shared.settings import CommonSettings

SUMMARY = re.compile(r"sent ([\d,]+) events: accepted ([\d,]+), duplicates ([\d,]+), rejected ([\d,]+)")


def parse_summary(lines: list[str]) -> dict[str, int]:
    """The simulator's last ``sent … accepted … duplicates … rejected`` figures (zeros if none)."""
    for line in reversed(lines):
        if m := SUMMARY.search(line):
            sent, accepted, dups, rejected = (int(g.replace(",", "")) for g in m.groups())
            return {"sent": sent, "accepted": accepted, "duplicates": dups, "rejected": rejected}
    return {"sent": 0, "accepted": 0, "duplicates": 0, "rejected": 0}


class SimProcess:
    """``python -m sim.cli …`` in its own process group; stderr followed, first-history mark kept."""

    def __init__(self, argv: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if k != "SQI_ADMIN_TOKEN"}  # keys only: no world set-up
        self.argv = [sys.executable, "-m", "sim.cli", *argv]
        self.started = time.monotonic()
        self.history_at: float | None = None
        self.lines: list[str] = []
        self.process = subprocess.Popen(self.argv, env=env, stderr=subprocess.PIPE, start_new_session=True)
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()

    def _follow(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        buf = b""
        while chunk := stream.read1(4096):  # type: ignore[attr-defined]
            buf += chunk
            *done, buf = re.split(rb"[\r\n]", buf)
            for raw in done:
                line = raw.decode(errors="replace").strip()
                if line.startswith("simulate: history") and self.history_at is None:
                    self.history_at = time.monotonic()
                if line:
                    self.lines.append(line)
                    del self.lines[:-200]

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the simulator prints its summary on SIGTERM
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(5)


class Live:
    def __init__(
        self,
        args: argparse.Namespace,
        gateway: str,
        settings: CommonSettings | None,
        processes: dict[int, str] | None = None,
        metrics: Sequence[str] = (),
        refresh_metrics: Sequence[str] = (),
    ) -> None:
        from gateway.jwt_auth import mint_dev_token
        from gateway.settings import GatewaySettings

        self.args, self.gateway, self.settings = args, gateway, settings
        self.processes = processes or {}  # pid → name of the platform's own processes (CPU table)
        self.metrics = list(metrics)  # the read APIs' /metrics (the cached reads' table); own platform only
        self.refresh_metrics = list(refresh_metrics)  # the scoring workers' /metrics (the refresh table)
        admin = args.admin_token or mint_dev_token(GatewaySettings(), sub="bench", role="admin", unit="CT")
        staff = args.staff_token or mint_dev_token(GatewaySettings(), sub="bench-leader", role="leader", unit="CT")
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.staff = {"Authorization": f"Bearer {staff}"}
        self.admin_token = admin
        self.keys_file = Path(tempfile.mkstemp(prefix="sqi-bench-keys-", suffix=".json")[1])
        self.period = period_now()
        self.report: dict[str, Any] = {"bench": "live"}

    def client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        return httpx.AsyncClient(base_url=self.gateway, timeout=self.args.read_timeout, limits=limits)

    # -- set-up ------------------------------------------------------------------------------------
    async def prepare(self) -> str:
        """The simulator's offices and keys (written for its ``--keys``), the marker unit and key."""
        from sim.send import Sender
        from sim.world import build_world

        sender = Sender(self.gateway, admin_token=self.admin_token, concurrency=4)
        try:
            await sender.ensure_world(build_world(self.args.seed))
        finally:
            await sender.aclose()
        self.keys_file.write_bytes(orjson.dumps(sender.keys))
        async with self.client() as client:
            return await ensure_marker_unit(client, self.admin)

    def sim_argv(self) -> list[str]:
        return ["--gateway", self.gateway, "--keys", str(self.keys_file), "--seed", str(self.args.seed)]

    async def caught_up(self, probe: MarkerProbe, deadline: float) -> float | None:
        """Monotonic time when every accepted event is in the scores.

        With its own platform: first nothing is left on the way — the ingest and feedback outboxes
        published, the scoring and feedback queues empty, no dossier waiting to be judged — then a
        fresh marker, sent after that, is counted. A marker alone is not enough: judging claims
        dossiers by unit, not by arrival, and ratings reach scoring through feedback, so a marker
        was counted while tens of thousands of the history's dossiers still waited (session 7).
        With ``--url`` (no database access) only the marker and, given ``--bus-prefix``, the queues.
        """
        async with self.client() as client:
            probe.client = client
            while time.monotonic() < deadline:
                if self.settings is not None and await _on_the_way(self.settings, database=bool(self.processes)) > 0:
                    await asyncio.sleep(0.5)
                    continue
                if await probe.wait_visible(max(1.0, deadline - time.monotonic())) is None:
                    return None
                return time.monotonic()
        return None

    # -- steps -------------------------------------------------------------------------------------
    def load(self, probe: MarkerProbe) -> None:
        a = self.args
        argv = [*self.sim_argv(), "--days", str(a.days), "--scale", str(a.scale), "--concurrency", str(a.concurrency)]
        say(f"bench live: loading history: python -m sim.cli {' '.join(argv)}")
        cpu_before = cpu_share.snapshot(self.processes)
        sim = SimProcess(argv)
        status = sim.wait(a.load_timeout)
        sent_done = time.monotonic()
        if status != 0:
            raise SystemExit("the simulator failed:\n" + "\n".join(sim.lines[-20:]))
        figures = parse_summary(sim.lines)
        t0 = sim.history_at or sim.started
        say(f"bench live: history sent ({figures['accepted']:,} accepted); waiting for the scores to catch up…")
        caught = asyncio.run(self.caught_up(probe, time.monotonic() + a.catchup_timeout))
        cpu = cpu_share.cores_between(cpu_before, cpu_share.snapshot(self.processes))
        probe.take()
        sending = sent_done - t0
        self.report["load"] = {
            "command": "python -m sim.cli " + " ".join(argv[4:]),
            **figures,
            "send_seconds": sending,
            "accepted_per_s": figures["accepted"] / sending if sending > 0 else 0.0,
            "caught_up_seconds": (caught - t0) if caught else None,
            "end_to_end_per_s": figures["accepted"] / (caught - t0) if caught else None,
            "cpu_cores": cpu,
        }
        load = self.report["load"]
        say(
            f"bench live: history accepted at {load['accepted_per_s']:,.0f} events/s; scores caught up "
            + (
                f"{load['caught_up_seconds']:.0f} s after the first request: "
                f"{load['end_to_end_per_s']:,.0f} events/s end to end"
                if caught
                else "never (timeout)"
            )
        )

    def bare(self) -> BareResult:
        say(f"bench live: bare pipeline, {self.args.bare_events:,} events…")
        result = run_bare(BareOptions(events=self.args.bare_events))
        self.report["bare"] = asdict(result)
        return result

    async def _phase(self, rate: float, probe: MarkerProbe, mix: dict[str, int]) -> dict[str, Any]:
        a = self.args
        launched = datetime.now(UTC)
        argv = [
            *self.sim_argv(),
            *("--rate", str(rate), "--duration", str(a.phase_seconds)),
            *("--scale", str(a.scale), "--concurrency", str(a.concurrency)),
        ]
        sim = SimProcess([*argv, "--no-catalogue"])
        try:
            async with self.client() as client:
                probe.client = client
                if not await _sim_started(client, self.admin, launched, time.monotonic() + a.start_timeout, sim):
                    raise RuntimeError(f"the live simulator sent nothing within {a.start_timeout:.0f} s")
                t0 = time.monotonic()
                cpu_before = cpu_share.snapshot(self.processes)
                cached_before = await cache_answers(client, self.metrics)
                refresh_before = await refresh_totals(client, self.refresh_metrics)
                readers = Readers(client, self.staff, mix, self.period, pace_s=a.read_pace)

                async def stream() -> cpu_share.Snapshot:
                    # The CPU table covers the stream (the readers' run), not the markers' settle.
                    await readers.run(a.phase_seconds)
                    return cpu_share.snapshot(self.processes)

                cpu_after, _ = await asyncio.gather(stream(), probe.measure(a.phase_seconds, a.settle))
                cpu = cpu_share.cores_between(cpu_before, cpu_after)
                cached = await cache_answers(client, self.metrics)
                refresh = await refresh_totals(client, self.refresh_metrics)
                elapsed = time.monotonic() - t0
            # It stops by itself after --duration (counted from its first tick): a little later.
            await asyncio.to_thread(_wait_quietly, sim.process, 60.0)
        finally:
            sim.stop()
        figures = parse_summary(sim.lines)
        return {
            "rate": rate,
            "phase_seconds": a.phase_seconds,
            "read_pace_s": a.read_pace,
            "measured_seconds": elapsed,
            **figures,
            "accepted_per_s": figures["accepted"] / a.phase_seconds,
            "freshness": probe.take(),
            "reads": summarise_reads(readers),
            "read_cache": {k: v - cached_before.get(k, 0.0) for k, v in cached.items()},
            "refresh": {k: v - refresh_before.get(k, 0.0) for k, v in refresh.items()},
            "cpu_cores": cpu,
        }

    def phases(self, probe: MarkerProbe) -> None:
        mix = parse_mix(self.args.mix)
        out = []
        for rate in self.args.rates:
            readers = sum(mix.values())
            say(f"bench live: {rate:,.0f} events/s for {self.args.phase_seconds:.0f} s with {readers} readers…")
            out.append(asyncio.run(self._phase(rate, probe, mix)))
        self.report["phases"] = out

    def run(self) -> dict[str, Any]:
        a = self.args
        marker_key = asyncio.run(self.prepare())
        probe = MarkerProbe(None, marker_key, self.staff, interval=a.marker_interval, poll=a.poll)
        if not a.skip_load:
            self.load(probe)
        if a.bare_events > 0:
            self.bare()
        self.phases(probe)
        load, bare = self.report.get("load"), self.report.get("bare")
        if load and bare and load.get("end_to_end_per_s"):
            self.report["ratio_end_to_end_to_bare"] = load["end_to_end_per_s"] / bare["events_per_s"]
        self.keys_file.unlink(missing_ok=True)
        return self.report


def _wait_quietly(process: subprocess.Popen[bytes], seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(seconds)


def _queues_to_scores() -> list[str]:
    """The queues an accepted event crosses on its way to the scores (scoring's; feedback's for ratings)."""
    from sqi_cli.migrate import subscriptions

    return [s.queue for s in subscriptions() if s.queue.startswith(("scoring.", "feedback."))]


# What is still on its way to the scores, read straight from the platform's database: outbox rows
# not yet published (ingest → everyone, feedback → scoring) and dossiers waiting to be judged
# (flagged by an event or a rating, or a time threshold passed more than a refresh tick ago).
_ON_THE_WAY = """
SELECT (SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL)
     + (SELECT count(*) FROM feedback.outbox WHERE published_at IS NULL)
     + (SELECT count(*) FROM scoring.dossier WHERE recheck_at < now() - interval '2 seconds')
     + (SELECT count(*) FROM scoring.dossier_flag WHERE accepted_at < now() - interval '2 seconds')
"""


async def _on_the_way(settings: CommonSettings, *, database: bool) -> int:
    """Queued messages, and with ``database`` outbox rows and dossiers to judge, between accepted
    events and the scores."""
    import asyncpg

    depths = await queue_depths(settings, _queues_to_scores())
    queued = sum(max(0, d) for d in depths.values())
    if queued or not database:
        return queued
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        return int(await conn.fetchval(_ON_THE_WAY))
    finally:
        await conn.close()


async def _sim_started(
    client: httpx.AsyncClient, admin: dict[str, str], launched: datetime, deadline: float, sim: SimProcess
) -> bool:
    """Poll ``GET /api/v1/feeds`` until a simulator source made a request after ``launched``.

    The live simulator first regenerates the last 20 days to continue them (tens of seconds at
    scale 1): the readers and markers start when its events do.
    """
    from bench.probes import MARKER_SOURCE

    while time.monotonic() < deadline:
        if sim.process.poll() is not None:
            raise RuntimeError("the live simulator ended early:\n" + "\n".join(sim.lines[-20:]))
        r = await client.get("/api/v1/feeds", headers=admin)
        if r.status_code == 200:
            times = [f["last_request_at"] for f in r.json() if f["source"] != MARKER_SOURCE and f["last_request_at"]]
            if times and max(datetime.fromisoformat(t) for t in times) > launched:
                return True
        await asyncio.sleep(0.5)
    return False


def _f(x: object, unit: str = "") -> str:
    if isinstance(x, float) and x != x:  # NaN
        return "–"
    if isinstance(x, float):
        return f"{x:,.2f}{unit}" if abs(x) < 100 else f"{x:,.0f}{unit}"
    return "–" if x is None else f"{x}{unit}"


def print_report(report: dict[str, Any]) -> None:
    rows: list[list[object]] = []
    load, bare = report.get("load"), report.get("bare")
    if load:
        rows += [
            ["history load", load["command"]],
            ["accepted (duplicates, rejected)", f"{load['accepted']:,} ({load['duplicates']:,}, {load['rejected']:,})"],
            ["ingest: accepted events/s", _f(load["accepted_per_s"])],
            ["first request → scores caught up", _f(load["caught_up_seconds"], " s")],
            ["end to end events/s (accept → scores updated)", _f(load["end_to_end_per_s"])],
        ]
    if bare:
        rows.append(
            [
                "bare pipeline events/s (same run)",
                f"{bare['events_per_s']:,.0f} (batch p99 {bare['batch_p99_ms']:,.0f} ms)",
            ]
        )
    if "ratio_end_to_end_to_bare" in report:
        rows.append(["end to end / bare", f"{report['ratio_end_to_end_to_bare']:.0%} (must reach ≥ 50 %)"])
    if rows:
        print_table("bench live: load, end to end, bare pipeline", ["what", "figure"], rows)
    phase_rows = []
    for p in report.get("phases", []):
        fr, rd = p["freshness"], p["reads"]

        def pair(kind: str, rd: dict[str, Any] = rd) -> str:
            s = rd.get(kind)
            if not s:
                return "–"
            errs = sum(s["errors"].values())
            return f"{_f(s['p50_ms'])} / {_f(s['p99_ms'])}" + (f" ({errs} err)" if errs else "")

        phase_rows.append(
            [
                f"{p['rate']:,.0f}",
                f"{p['accepted_per_s']:,.0f}",
                f"{_f(fr['p50_s'])} / {_f(fr['p95_s'])} / {_f(fr['p99_s'])}",
                f"{fr['seen']}/{fr['markers']}",
                pair("ranking"),
                pair("breakdown"),
                pair("dossiers"),
                pair("public"),
            ]
        )
    if phase_rows:
        print_table(
            "bench live: per rate (freshness s; reads ms p50 / p99, a request per reader every "
            f"{report['phases'][0].get('read_pace_s', 0):g} s)",
            [
                "target ev/s",
                "accepted ev/s",
                "freshness p50/p95/p99",
                "markers seen",
                "ranking",
                "breakdown",
                "drill-down",
                "GET /",
            ],
            phase_rows,
        )
    print_read_cache(report)
    print_refresh(report)
    print_cpu(report)
    print(orjson.dumps(report).decode())  # NaN becomes null


def print_read_cache(report: dict[str, Any]) -> None:
    """How the score bodies and the pages were answered in each phase (own platform only)."""
    phases = [p for p in report.get("phases", []) if p.get("read_cache")]
    if not phases:
        return
    kinds = sorted({k for p in phases for k in p["read_cache"]})
    rows: list[list[object]] = [[k, *(f"{p['read_cache'].get(k, 0.0):,.0f}" for p in phases)] for k in kinds]
    print_table(
        "bench live: cached reads answered (current, the previous one while its successor is built, or after waiting)",
        ["cache outcome", *(f"{p['rate']:,.0f} ev/s" for p in phases)],
        rows,
    )


async def _samples(client: httpx.AsyncClient, urls: Sequence[str]) -> list[Sample]:
    """Every sample of the ``/metrics`` pages at ``urls`` (a page that does not answer: none)."""
    out: list[Sample] = []
    for url in urls:
        try:
            page = (await client.get(url)).text
        except httpx.HTTPError:
            continue
        out += [sample for family in text_string_to_metric_families(page) for sample in family.samples]
    return out


async def cache_answers(client: httpx.AsyncClient, urls: Sequence[str]) -> dict[str, float]:
    """``"cache outcome"`` → answers so far (``sqi_read_cache_answers_total``), over ``urls``."""
    out: dict[str, float] = {}
    for sample in await _samples(client, urls):
        if sample.name == "sqi_read_cache_answers_total":
            key = f"{sample.labels['cache']} {sample.labels['outcome']}"
            out[key] = out.get(key, 0.0) + sample.value
    return out


#: The scoring workers' refresh metrics a phase reports (sample name → the report's key).
REFRESH_SAMPLES = {
    "sqi_judging_step_seconds_count": "judging steps",
    "sqi_judging_step_seconds_sum": "judging seconds",
    "sqi_dossiers_judged_total": "dossiers judged",
    "sqi_period_recompute_seconds_count": "{kind} recomputations",
    "sqi_period_recompute_seconds_sum": "{kind} seconds",
    "sqi_freshness_seconds_count": "freshness observations",
    "sqi_freshness_seconds_sum": "freshness seconds",
}


async def refresh_totals(client: httpx.AsyncClient, urls: Sequence[str]) -> dict[str, float]:
    """The refresh's totals so far over the scoring workers' pages: judging steps and their
    seconds, dossiers judged, recomputations and their seconds per period kind, and scoring's own
    freshness observations (``sqi_freshness_seconds``: acceptance → committed recomputation)."""
    out: dict[str, float] = {}
    for sample in await _samples(client, urls):
        key = REFRESH_SAMPLES.get(sample.name)
        if key is not None:
            key = key.format(kind=sample.labels.get("kind", ""))
            out[key] = out.get(key, 0.0) + sample.value
    return out


def refresh_rows(phases: Sequence[dict[str, Any]]) -> list[list[object]]:
    """The refresh table's rows (figure, then one column a phase) from each phase's totals."""

    totals = [p["refresh"] for p in phases]

    def count(key: str) -> list[str]:
        return [f"{t.get(key, 0.0):,.0f}" for t in totals]

    def mean(num: str, den: str, scale: float = 1.0) -> list[str]:
        return [f"{t.get(num, 0.0) * scale / t[den]:,.2f}" if t.get(den) else "–" for t in totals]

    rows: list[list[object]] = [
        ["judging steps", *count("judging steps")],
        ["judging step, mean s", *mean("judging seconds", "judging steps")],
        ["dossiers a step, mean", *mean("dossiers judged", "judging steps")],
        ["judging ms a dossier (wall)", *mean("judging seconds", "dossiers judged", 1000)],
    ]
    for kind in ("month", "quarter", "year"):
        rows.append([f"{kind} recomputations", *count(f"{kind} recomputations")])
        rows.append([f"{kind} recomputation, mean s", *mean(f"{kind} seconds", f"{kind} recomputations")])
    rows.append(["freshness in scoring, mean s", *mean("freshness seconds", "freshness observations")])
    return rows


def print_refresh(report: dict[str, Any]) -> None:
    """Where each phase's refresh time went (own platform only: its scoring workers' metrics)."""
    phases = [p for p in report.get("phases", []) if p.get("refresh")]
    if phases:
        print_table(
            "bench live: the scoring refresh (its workers' metrics; under a stream freshness ≈ 1.5 × (judging step"
            " + month))",
            ["figure", *(f"{p['rate']:,.0f} ev/s" for p in phases)],
            refresh_rows(phases),
        )


def print_cpu(report: dict[str, Any]) -> None:
    """Cores per process group in the load and in each phase, and CPU per accepted event."""
    columns: list[tuple[str, dict[str, float], float]] = []
    load = report.get("load")
    if load and load.get("cpu_cores") and load.get("caught_up_seconds"):
        columns.append(("history load", load["cpu_cores"], load["end_to_end_per_s"]))
    for p in report.get("phases", []):
        if p.get("cpu_cores"):
            columns.append((f"{p['rate']:,.0f} ev/s", p["cpu_cores"], p["accepted_per_s"]))
    if not columns:
        return
    busiest = {g: max(c.get(g, 0.0) for _, c, _ in columns) for _, cores, _ in columns for g in cores}
    groups = sorted(busiest, key=lambda g: -busiest[g])
    rows: list[list[object]] = [[g, *(f"{c.get(g, 0.0):.2f}" for _, c, _ in columns)] for g in groups]
    # "other" is whatever else the machine ran (not the platform, its servers or this benchmark).
    ours = [{g: v for g, v in c.items() if g != "other"} for _, c, _ in columns]
    rows.append(["all but other", *(f"{sum(c.values()):.2f}" for c in ours)])
    rates = [rate for _, _, rate in columns]
    per_event = (_f(sum(c.values()) * 1e6 / rate) if rate else "–" for c, rate in zip(ours, rates, strict=True))
    rows.append(["µs of CPU per accepted event (all but other)", *per_event])
    print_table("bench live: cores used per process (CPU s / wall s)", ["process", *(n for n, _, _ in columns)], rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="./sqi bench live", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", help="use this running platform's gateway instead of starting one")
    p.add_argument("--bus-prefix", help="with --url: its SQI_BUS_PREFIX, to also wait for empty scoring queues")
    p.add_argument("--admin-token", help="admin JWT (default: a development token)")
    p.add_argument("--staff-token", help="the readers' JWT (default: a development leader token)")
    p.add_argument("--scoring-workers", type=int, default=1, help="scoring worker processes (default 1, as ./sqi up)")
    p.add_argument("--days", type=int, default=28, help="history days ending now (default 28)")
    p.add_argument("--scale", type=float, default=1.0, help="simulator scale (default 1 ≈ 1 M events a month)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=4, help="the simulator's concurrent requests (4)")
    p.add_argument("--skip-load", action="store_true", help="the platform is loaded already (with --url)")
    p.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[500.0, 2000.0, 5000.0],
        help="events/s per phase (default 500,2000,5000)",
    )
    p.add_argument("--phase-seconds", type=float, default=60.0, help="each phase (default 60)")
    p.add_argument("--settle", type=float, default=60.0, help="after a phase, wait at most this for markers")
    p.add_argument("--mix", default=DEFAULT_MIX, help=f"readers per kind (default {DEFAULT_MIX})")
    p.add_argument("--marker-interval", type=float, default=1.0, help="a marker every N s (default 1)")
    p.add_argument("--poll", type=float, default=0.1, help="the marker unit's score polled every N s (0.1)")
    p.add_argument(
        "--read-pace",
        type=float,
        default=1.0,
        help="each reader starts a request every N s (default 1: people at dashboards); 0: back to back",
    )
    p.add_argument("--read-timeout", type=float, default=60.0, help="per request (default 60 s)")
    p.add_argument("--bare-events", type=int, default=200_000, help="bare pipeline size; 0 skips it")
    p.add_argument("--load-timeout", type=float, default=1800.0)
    p.add_argument("--catchup-timeout", type=float, default=900.0)
    p.add_argument("--start-timeout", type=float, default=300.0, help="for the live simulator's first request")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    parse_mix(args.mix)  # fail before starting anything
    started = datetime.now(UTC)
    if args.url:
        settings = None
        if args.bus_prefix is not None:
            os.environ["SQI_BUS_PREFIX"] = args.bus_prefix
            settings = CommonSettings()
        report = Live(args, args.url.rstrip("/"), settings).run()
    else:
        with scratch(f"sqi_bench_live{os.environ.get('SQI_TEST_DB_SUFFIX', '')}") as settings:
            running = bench_platform(scoring_workers=args.scoring_workers, scoring_metrics=True)
            running.start()
            try:
                if not running.wait_ready(120):
                    raise RuntimeError("the platform did not become ready")
                named = {pid: name for name, pid in running.pids().items()}
                metrics = [f"{running.url_of(service)}/metrics" for service in ("scoring", "reporting")]
                workers = scoring_worker_metrics(running)
                report = Live(args, running.gateway, settings, named, metrics, workers).run()
            finally:
                running.stop()
    report.update(
        {
            "date": started.isoformat(timespec="seconds"),
            "machine": f"{host.node()} {os.cpu_count()} CPU, load {os.getloadavg()[0]:.1f}",
            "scoring_workers": args.scoring_workers if not args.url else None,
            "command": "./sqi bench live " + " ".join(argv),
        }
    )
    print_report(report)
    return 0
