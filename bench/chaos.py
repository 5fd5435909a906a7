"""``./sqi bench chaos``: kill and restart every kind of process under a steady stream; nothing lost.

While a sender streams dossier events through the gateway (``--rate`` events/s, source
``bench-chaos``, units ``Pnn.CHAOS``), each process of the platform in turn — the gateway, every
API, every worker — is killed with SIGKILL, left down ``--down`` seconds, restarted and given
``--steady`` seconds; then RabbitMQ is restarted (``rabbitmqctl stop_app/start_app``) and
PostgreSQL (``pg_ctl restart -m fast``). By default these are a private PostgreSQL and RabbitMQ
started for the run (``bench/private_servers.py``), so nobody else is disturbed;
``--shared-servers`` uses the machine's (then ``--broker``/``--database`` must be asked for: run
it under ``flock /tmp/sqi-heavy.lock`` and not twice a day).

The sender behaves as a dossier system should: every request that fails (connection error, 5xx,
429) is resent unchanged until it gets an answer, so a request whose 200 was lost comes back as
duplicates. Afterwards (operator queries on the platform's database, documented in
``docs/reliability.md``):

* every event that got a 200 is in the raw log (``ingest.event_log``) exactly once, and nothing
  the sender did not send is there;
* scoring applied each exactly once: per dossier, ``scoring.dossier_event`` holds the same events
  as the raw log (waited for, with a deadline);
* ``./sqi recompute`` (replay the raw log, rebuild, compare with the live scores): 0 differences;
* the sender's retries show as duplicates in the answers, never as losses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
import orjson

from bench.common import print_table, say, scratch
from bench.private_servers import private_servers
from bench.probes import VN
from shared.settings import CommonSettings
from sqi_cli.platform import SERVICES, Platform
from sqi_cli.scratch import free_port_block

SOURCE = "bench-chaos"
UNITS = ("P01.CHAOS", "P02.CHAOS", "P03.CHAOS", "P04.CHAOS")
PROCEDURE = "T.DKT.02"
RETRYABLE = {429, 500, 502, 503, 504}


class ChaosPlatform(Platform):
    """The platform of ``./sqi up``, plus: kill one process and start it again, as it was."""

    def __init__(self, port: int, **kw: Any) -> None:
        super().__init__(port, **kw)
        self.argv: dict[str, list[str]] = {}

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self.argv[name] = argv
        return super().spawn(name, argv)

    def names(self) -> list[str]:
        return [name for name, _ in self.processes]

    def kill(self, name: str) -> None:
        for i, (n, process) in enumerate(self.processes):
            if n == name:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                del self.processes[i]
                return
        raise KeyError(name)

    def restart(self, name: str) -> None:
        self.spawn(name, self.argv[name])

    def exited(self) -> list[str]:
        return [name for name, process in self.processes if process.poll() is not None]

    def ready_url(self, name: str) -> str | None:
        if name == "gateway":
            return f"{self.gateway}/healthz"
        service = name.removesuffix("-api")
        if name.endswith("-api") and service in SERVICES:
            return f"{self.url_of(service)}/readyz"
        return None  # workers answer no HTTP here: the final checks see whether they resumed


@dataclass(frozen=True)
class ChaosOptions:
    rate: float = 200.0
    kills: tuple[str, ...] = ()  # empty: every process
    down: float = 2.0
    steady: float = 8.0
    broker: bool = False
    database: bool = False
    drain_timeout: float = 120.0
    recompute: bool = True
    recompute_timeout: float = 180.0


@dataclass
class SendStats:
    requests: int = 0
    retried_requests: int = 0
    attempts_failed: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    gave_up: int = 0
    confirmed: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)


class Stream:
    """Dossier events at about ``rate``/s: received, then completed and synced a few seconds later."""

    def __init__(self, client: httpx.AsyncClient, key: str, rate: float, run: str) -> None:
        self.client, self.key, self.rate, self.run = client, key, rate, run
        self.stats = SendStats()
        self.n = 0
        self.open: deque[tuple[float, str]] = deque()
        self.stop = asyncio.Event()

    def events(self, budget: int, now: float) -> list[dict[str, Any]]:
        at = datetime.now(UTC)
        out: list[dict[str, Any]] = []
        while self.open and self.open[0][0] <= now - 3 and len(out) + 2 <= budget:
            _, dossier = self.open.popleft()
            out.append(_event(dossier, "completed", at, {"outcome": "approved", "result_digitized": True}))
            out.append(_event(dossier, "synced", at, {}))
        while len(out) < budget:
            self.n += 1
            dossier = f"CHAOS-{self.run}-{self.n:07d}"
            unit = UNITS[self.n % len(UNITS)]
            out.append(_received(dossier, unit, at))
            self.open.append((now, dossier))
        return out

    async def post(self, events: list[dict[str, Any]], give_up_after: float = 300.0) -> None:
        """One request, resent unchanged until answered (or ``give_up_after`` seconds)."""
        body = b"".join(orjson.dumps(e) + b"\n" for e in events)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/x-ndjson"}
        ids = [e["event_id"] for e in events]
        s = self.stats
        s.requests += 1
        s.sent.update(ids)
        deadline, delay, attempt = time.monotonic() + give_up_after, 0.2, 0
        while True:
            attempt += 1
            try:
                r = await self.client.post("/api/v1/events", content=body, headers=headers)
                outcome = str(r.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            if outcome in ("200", "422"):
                ans = r.json()
                s.accepted += int(ans.get("accepted", 0))
                s.duplicates += int(ans.get("duplicates", 0))
                rejected = {int(x["index"]) for x in ans.get("rejected") or []}
                s.rejected += len(rejected)
                s.confirmed.update(i for n, i in enumerate(ids) if n not in rejected)
                s.retried_requests += attempt > 1
                return
            s.attempts_failed += 1
            s.failures[outcome] = s.failures.get(outcome, 0) + 1
            if outcome.isdigit() and int(outcome) not in RETRYABLE:
                raise RuntimeError(f"POST /api/v1/events answered {outcome}: {r.text[:300]}")
            if time.monotonic() > deadline:
                s.gave_up += 1
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def run_until_stopped(self) -> None:
        last = time.monotonic()
        carry = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            carry += (now - last) * self.rate
            last = now
            budget = min(int(carry), 5000)
            if budget >= 2:
                carry -= budget
                await self.post(self.events(budget, now))
            await asyncio.sleep(0.25)


def _iso(at: datetime) -> str:
    return at.astimezone(VN).isoformat(timespec="seconds")


def _event(dossier: str, kind: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "event_id": f"{dossier}:{kind}",
        "type": f"dossier.{kind}",
        "occurred_at": _iso(at),
        "data": {"dossier_id": dossier, **data},
    }


def _received(dossier: str, unit: str, at: datetime) -> dict[str, Any]:
    data = {
        "procedure_code": PROCEDURE,
        "unit_code": unit,
        "due_at": _iso(at + timedelta(days=3)),
        "channel": "online",
        "online_level": "full",
        "applicant_type": "citizen",
        "officer_id": "chaos-officer",
    }
    return _event(dossier, "received", at - timedelta(minutes=2), data)


# -- the servers -----------------------------------------------------------------------------------
def _wait_port(port: int, seconds: float) -> bool:
    from sqi_cli.infra import reachable

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reachable("127.0.0.1", port, 0.5):
            return True
        time.sleep(0.2)
    return False


class SharedServers:
    """The machine's own RabbitMQ and PostgreSQL (everyone's: restart them once a day at most)."""

    @staticmethod
    def restart_broker() -> float:
        return restart_broker()

    @staticmethod
    def restart_database() -> float:
        return restart_database()


def restart_broker() -> float:
    """``rabbitmqctl stop_app`` then ``start_app`` (epmd kept on loopback); seconds until AMQP answers."""
    env = {**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"}
    t0 = time.monotonic()
    subprocess.run(["rabbitmqctl", "stop_app"], env=env, check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "start_app"], env=env, check=True, capture_output=True)
    if not _wait_port(5672, 60):
        raise RuntimeError("RabbitMQ did not come back")
    return time.monotonic() - t0


def restart_database() -> float:
    """``pg_ctlcluster --skip-systemctl-redirect <ver> main restart``; seconds until it answers."""
    version = sorted(Path(p).name for p in glob.glob("/etc/postgresql/*"))[-1]
    t0 = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, capture_output=True
    )
    if not _wait_port(5432, 60):
        raise RuntimeError("PostgreSQL did not come back")
    return time.monotonic() - t0


# -- the run ---------------------------------------------------------------------------------------
async def _ready(client: httpx.AsyncClient, url: str | None, seconds: float) -> float | None:
    t0 = time.monotonic()
    if url is None:
        return None
    while time.monotonic() - t0 < seconds:
        try:
            if (await client.get(url, timeout=2)).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {seconds:.0f} s")


async def prepare(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    for code in UNITS:
        body = {
            "name": f"Đơn vị thử sự cố {code}",
            "level": "local",
            "parent_code": code[:3],
            "valid_from": "2025-07-01",
        }
        r = await client.put(f"/api/v1/units/{code}", json=body, headers=admin)
        if r.status_code >= 300:
            raise RuntimeError(f"PUT /api/v1/units/{code}: {r.status_code} {r.text[:300]}")
    r = await client.post("/api/v1/keys", json={"source": SOURCE, "units": list(UNITS)}, headers=admin)
    if r.status_code >= 300:
        raise RuntimeError(f"POST /api/v1/keys: {r.status_code} {r.text[:300]}")
    return str(r.json()["key"])


async def _schedule(
    platform: ChaosPlatform,
    opts: ChaosOptions,
    client: httpx.AsyncClient,
    log: list[dict[str, Any]],
    servers: Servers,
) -> None:
    await asyncio.sleep(opts.steady)
    for name in opts.kills or tuple(platform.names()):
        say(f"chaos: SIGKILL {name}")
        t0 = time.monotonic()
        platform.kill(name)
        await asyncio.sleep(opts.down)
        platform.restart(name)
        ready = await _ready(client, platform.ready_url(name), 120)
        log.append({"what": f"SIGKILL {name}", "down_s": opts.down, "ready_after_restart_s": ready})
        await _steady(platform, opts, log)
        say(f"chaos: {name} back after {time.monotonic() - t0:.1f} s")
    for flag, what, action in (
        (opts.broker, "restart RabbitMQ", servers.restart_broker),
        (opts.database, "restart PostgreSQL", servers.restart_database),
    ):
        if flag:
            say(f"chaos: {what}")
            seconds = await asyncio.to_thread(action)
            log.append({"what": what, "back_after_s": seconds})
            await _steady(platform, opts, log)


async def _steady(platform: ChaosPlatform, opts: ChaosOptions, log: list[dict[str, Any]]) -> None:
    """``steady`` seconds of stream; a process that died on its own is noted and restarted."""
    await asyncio.sleep(opts.steady)
    for name in platform.exited():
        say(f"chaos: {name} EXITED BY ITSELF — restarting it")
        log.append({"what": f"{name} exited by itself", "status": dict(platform.processes)[name].returncode})
        platform.kill(name)
        platform.restart(name)


async def verify(dsn: str, stats: SendStats, drain_timeout: float) -> dict[str, Any]:
    """The raw log and scoring against what the sender was told (operator queries)."""
    conn = await asyncpg.connect(dsn)
    try:
        raw = {
            r["event_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT event_id, count(*) AS n FROM ingest.event_log WHERE source = $1 GROUP BY event_id", SOURCE
            )
        }
        deadline = time.monotonic() + drain_timeout
        t0 = time.monotonic()
        while True:
            applied = await conn.fetchval("SELECT count(*) FROM scoring.dossier_event WHERE source = $1", SOURCE)
            if applied >= len(raw) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        drained = time.monotonic() - t0
        # The recompute compares with the live rows as of their period's last computation: every
        # stored event must be judged and every marked period recomputed first (a running quarter
        # or year waits up to SQI_SCORING_DERIVED_REFRESH_SECONDS), else the comparison races them.
        quiet = 0  # samples in a row with nothing to judge and nothing to recompute
        while quiet < 3 and time.monotonic() < deadline:
            busy = await conn.fetchval(
                "SELECT (SELECT count(*) FROM scoring.dirty_period)"
                " + (SELECT count(*) FROM scoring.dossier WHERE recheck_at < now())"
                " + (SELECT count(*) FROM scoring.dossier_flag)"
            )
            quiet = quiet + 1 if busy == 0 else 0
            await asyncio.sleep(0.5)
        settled = quiet >= 3
        per_dossier_sql = "SELECT dossier_id, count(*) AS n FROM {} WHERE source = $1 GROUP BY dossier_id"
        raw_dossiers = {
            r["dossier_id"]: r["n"] for r in await conn.fetch(per_dossier_sql.format("ingest.event_log"), SOURCE)
        }
        scored = {
            r["dossier_id"]: r["n"] for r in await conn.fetch(per_dossier_sql.format("scoring.dossier_event"), SOURCE)
        }
    finally:
        await conn.close()
    lost = stats.confirmed - raw.keys()
    return {
        "confirmed": len(stats.confirmed),
        "raw_events": len(raw),
        "lost": len(lost),
        "lost_sample": sorted(lost)[:5],
        "raw_more_than_once": sum(1 for n in raw.values() if n != 1),
        "raw_not_sent": len(raw.keys() - stats.sent),
        "raw_unconfirmed": len(raw.keys() - stats.confirmed),
        "scoring_drain_s": drained,
        "scoring_settled": settled,
        "dossiers": len(raw_dossiers),
        "dossiers_differing": sum(
            1 for d in raw_dossiers.keys() | scored.keys() if raw_dossiers.get(d) != scored.get(d)
        ),
    }


def recompute(platform: Platform, timeout: float) -> dict[str, Any]:
    """``./sqi recompute --gateway …`` with the platform's database and bus: exit 0 = 0 differences."""
    t0 = time.monotonic()
    argv = [sys.executable, "-m", "sqi_cli", "recompute", "--gateway", platform.gateway, "--timeout", str(timeout)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, env=platform.env)
    except subprocess.TimeoutExpired:
        summary = f"no answer within {timeout + 30:.0f} s (replay never served?)"
        return {"status": -1, "summary": summary, "seconds": time.monotonic() - t0, "diffs": ""}
    tail = (done.stderr.strip().splitlines() or [""])[-1]
    return {"status": done.returncode, "summary": tail, "seconds": time.monotonic() - t0, "diffs": done.stdout[-2000:]}


class Servers(Protocol):
    def restart_broker(self) -> float: ...

    def restart_database(self) -> float: ...


async def chaos(
    platform: ChaosPlatform, settings: CommonSettings, opts: ChaosOptions, servers: Servers | None = None
) -> dict[str, Any]:
    """The stream, the schedule, the checks. Answers the report (``ok``: every check held)."""
    from gateway.jwt_auth import mint_dev_token
    from gateway.settings import GatewaySettings

    admin = {"Authorization": f"Bearer {mint_dev_token(GatewaySettings(), sub='chaos', role='admin', unit='CT')}"}
    log: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as client:
        key = await prepare(client, admin)
        stream = Stream(client, key, opts.rate, datetime.now(UTC).strftime("%H%M%S"))
        sender = asyncio.create_task(stream.run_until_stopped())
        t0 = time.monotonic()
        try:
            await _schedule(platform, opts, client, log, servers or SharedServers())
        finally:
            stream.stop.set()
            await sender
        streamed = time.monotonic() - t0
    say("chaos: stream stopped; checking the raw log and scoring…")
    checks = await verify(settings.asyncpg_dsn, stream.stats, opts.drain_timeout)
    report: dict[str, Any] = {
        "bench": "chaos",
        "options": asdict(opts),
        "stream_seconds": streamed,
        "sender": {k: v for k, v in asdict(stream.stats).items() if k not in ("confirmed", "sent")},
        "events_sent": len(stream.stats.sent),
        "steps": log,
        "checks": checks,
    }
    if opts.recompute:
        say("chaos: ./sqi recompute…")
        report["recompute"] = recompute(platform, opts.recompute_timeout)
    report["ok"] = is_ok(report)
    return report


def is_ok(report: dict[str, Any]) -> bool:
    c = report["checks"]
    return (
        c["lost"] == 0
        and c["raw_more_than_once"] == 0
        and c["raw_not_sent"] == 0
        and c["dossiers_differing"] == 0
        and c["scoring_settled"]
        and report["sender"]["gave_up"] == 0
        and report["sender"]["rejected"] == 0
        and report.get("recompute", {"status": 0})["status"] == 0
        and not any("exited by itself" in s["what"] for s in report["steps"])
    )


def print_report(report: dict[str, Any]) -> None:
    s, c = report["sender"], report["checks"]
    print_table(
        "chaos: steps",
        ["step", "figures"],
        [[x["what"], {k: v for k, v in x.items() if k != "what"}] for x in report["steps"]],
    )
    rows: list[list[object]] = [
        ["stream", f"{report['events_sent']:,} events in {report['stream_seconds']:.0f} s, {s['requests']:,} requests"],
        [
            "failed attempts (resent)",
            f"{s['attempts_failed']:,} {s['failures']}; requests retried {s['retried_requests']}",
        ],
        [
            "answers",
            f"accepted {s['accepted']:,}, duplicates {s['duplicates']:,}, "
            f"rejected {s['rejected']}, gave up {s['gave_up']}",
        ],
        [
            "raw log",
            f"{c['raw_events']:,} events; 200-confirmed missing: {c['lost']}; "
            f"more than once: {c['raw_more_than_once']}; never sent: {c['raw_not_sent']}",
        ],
        [
            "scoring (per dossier = raw log)",
            f"{c['dossiers']:,} dossiers, differing {c['dossiers_differing']} "
            f"(caught up in {c['scoring_drain_s']:.1f} s, "
            f"{'settled' if c['scoring_settled'] else 'NOT settled: still judging or recomputing'})",
        ],
    ]
    if "recompute" in report:
        r = report["recompute"]
        rows.append(["./sqi recompute", f"status {r['status']}: {r['summary']} ({r['seconds']:.0f} s)"])
    rows.append(["verdict", "OK: nothing lost, nothing applied twice" if report["ok"] else "FAILED"])
    print_table("chaos: outcome", ["what", "figure"], rows)
    print(orjson.dumps(report, default=str).decode())


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def chaos_platform(services: Sequence[str] = SERVICES) -> ChaosPlatform:
    return ChaosPlatform(free_port_block(len(SERVICES) + 1, start=28_100), services=services)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="./sqi bench chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = ChaosOptions()
    p.add_argument("--rate", type=float, default=d.rate, help=f"events/s streamed (default {d.rate:.0f})")
    p.add_argument("--kill", action="append", default=[], help="only this process (repeatable; default: all)")
    p.add_argument("--down", type=float, default=d.down, help=f"seconds a killed process stays down ({d.down})")
    p.add_argument("--steady", type=float, default=d.steady, help=f"seconds of stream between steps ({d.steady})")
    p.add_argument(
        "--shared-servers",
        action="store_true",
        help="use the machine's RabbitMQ and PostgreSQL (default: private ones started for the run)",
    )
    p.add_argument(
        "--broker",
        action=argparse.BooleanOptionalAction,
        help="restart RabbitMQ (default: yes with private servers, no with shared ones)",
    )
    p.add_argument(
        "--database",
        action=argparse.BooleanOptionalAction,
        help="restart PostgreSQL (default: yes with private servers, no with shared ones)",
    )
    p.add_argument("--no-recompute", action="store_true")
    p.add_argument("--drain-timeout", type=float, default=d.drain_timeout)
    args = p.parse_args(argv)
    # ``timeout`` and Ctrl-C alike: unwind, so the platform and the private servers are stopped.
    signal.signal(signal.SIGTERM, _terminate)
    private = not args.shared_servers
    opts = ChaosOptions(
        rate=args.rate,
        kills=tuple(args.kill),
        down=args.down,
        steady=args.steady,
        broker=private if args.broker is None else args.broker,
        database=private if args.database is None else args.database,
        drain_timeout=args.drain_timeout,
        recompute=not args.no_recompute,
    )
    with contextlib.ExitStack() as stack:
        servers: Servers = SharedServers()
        if private:
            own = stack.enter_context(private_servers())
            say(f"chaos: private PostgreSQL on :{own.pg_port}, RabbitMQ on :{own.amqp_port}")
            os.environ["SQI_DATABASE_URL"] = own.database_url
            os.environ["SQI_AMQP_URL"] = own.amqp_url
            servers = own
        settings = stack.enter_context(scratch(f"sqi_bench_chaos{os.environ.get('SQI_TEST_DB_SUFFIX', '')}"))
        platform = chaos_platform()
        platform.start()
        try:
            if not platform.wait_ready(120):
                raise RuntimeError("the platform did not become ready")
            report = asyncio.run(chaos(platform, settings, opts, servers))
        finally:
            platform.stop()
    report["servers"] = "private" if private else "shared"
    report["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["command"] = "./sqi bench chaos " + " ".join(argv)
    print_report(report)
    return 0 if report["ok"] else 1
