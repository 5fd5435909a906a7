"""The pure parts of ``bench live`` and ``bench chaos``: what they send and how they read answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from importlib import import_module

import httpx
import orjson
import pytest

from bench import cpu_share
from bench.chaos import SOURCE, Stream, is_ok
from bench.live import parse_summary
from bench.pg_activity import report
from bench.probes import MARKER_SOURCE, MARKER_UNIT, MarkerProbe, Pending, Readers, marker_lines, parse_mix, resolve
from bench.run import BENCHMARKS, MODULES
from sqi_cli.scratch import admin_dsn


def test_a_count_resolves_every_marker_it_covers_and_keeps_the_rest() -> None:
    pending = [Pending(11, 1.0), Pending(12, 2.0), Pending(13, 3.0)]
    done, left = resolve(pending, 12, 5.0)
    assert done == [4.0, 3.0]
    assert left == [Pending(13, 3.0)]
    assert resolve(left, -1, 9.0) == ([], left)  # a failed poll (-1) resolves nothing


def test_a_marker_is_a_received_and_a_completed_dossier_in_the_marker_unit() -> None:
    lines = marker_lines("r1", 7, datetime(2026, 11, 20, 3, 0, tzinfo=UTC)).splitlines()
    received, completed = (orjson.loads(x) for x in lines)
    assert received["source"] == completed["source"] == MARKER_SOURCE
    assert received["type"] == "dossier.received" and completed["type"] == "dossier.completed"
    assert received["data"]["unit_code"] == MARKER_UNIT
    assert received["data"]["dossier_id"] == completed["data"]["dossier_id"] == "BENCH-r1-000007"
    assert received["occurred_at"] == "2026-11-20T09:59:00+07:00"  # a minute before, Vietnam time
    assert completed["occurred_at"] == "2026-11-20T10:00:00+07:00"


def test_the_reader_mix_names_known_reads_only() -> None:
    assert parse_mix("ranking=8, breakdown=6,public=0") == {"ranking": 8, "breakdown": 6, "public": 0}
    with pytest.raises(ValueError):
        parse_mix("rankings=3")
    with pytest.raises(ValueError):
        parse_mix("ranking=x")


def test_the_simulators_last_summary_line_is_read() -> None:
    lines = [
        "simulate: sent 10 events: accepted 9, duplicates 1, rejected 0, retries 0",
        "live: 12,345 events; sent 12,400 events: accepted 12,000, duplicates 390, rejected 10, retries 2",
    ]
    assert parse_summary(lines) == {"sent": 12_400, "accepted": 12_000, "duplicates": 390, "rejected": 10}
    assert parse_summary(["nothing"])["accepted"] == 0


def test_the_chaos_stream_completes_dossiers_a_few_seconds_after_receiving_them() -> None:
    stream = Stream(client=None, key="k", rate=100, run="t")  # type: ignore[arg-type]
    first = stream.events(10, now=100.0)
    assert [e["type"] for e in first] == ["dossier.received"] * 10
    assert stream.events(4, now=101.0)[0]["type"] == "dossier.received"  # too early to complete
    later = stream.events(6, now=104.0)
    assert [e["type"] for e in later[:4]] == ["dossier.completed", "dossier.synced"] * 2
    ids = [e["event_id"] for e in first + later]
    assert len(ids) == len(set(ids)) and all(e["source"] == SOURCE for e in first)


def _report(**changes: object) -> dict[str, object]:
    checks = {"lost": 0, "raw_more_than_once": 0, "raw_not_sent": 0, "dossiers_differing": 0, "scoring_settled": True}
    sender = {"gave_up": 0, "rejected": 0}
    report: dict[str, object] = {
        "checks": checks,
        "sender": sender,
        "steps": [{"what": "SIGKILL gateway"}],
        "recompute": {"status": 0},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            report[section][name] = value  # type: ignore[index]
        else:
            report[section] = value
    return report


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({}, True),
        ({"checks__lost": 1}, False),
        ({"checks__raw_more_than_once": 2}, False),
        ({"checks__dossiers_differing": 1}, False),
        ({"checks__scoring_settled": False}, False),
        ({"sender__gave_up": 1}, False),
        ({"recompute": {"status": -1}}, False),
        ({"steps": [{"what": "scoring-worker exited by itself"}]}, False),
    ],
)
def test_a_chaos_run_passes_only_when_every_check_holds(changes: dict[str, object], ok: bool) -> None:
    assert is_ok(_report(**changes)) is ok


def test_the_consumers_bench_sends_only_dossier_events_in_messages_of_500() -> None:
    from bench.consumers import BATCH, messages

    kinds = ["procedure.upserted", "dossier.received", "dossier.received"]
    lines = [orjson.dumps({"type": kinds[i % 3], "n": i}) for i in range(1_503)]
    n, bodies = messages(lines)
    assert n == 1_002 and len(bodies) == 3 and BATCH == 500
    assert [len(orjson.loads(b)["events"]) for b in bodies] == [500, 500, 2]
    assert all(e["type"] == "dossier.received" for b in bodies for e in orjson.loads(b)["events"])
    assert messages(lines, limit=7)[0] == 7


def test_paced_readers_start_at_most_one_request_per_pace_each() -> None:
    async def run() -> Readers:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, text="ok"))
        async with httpx.AsyncClient(transport=transport, base_url="http://sqi") as client:
            readers = Readers(client, {}, {"ranking": 3, "public": 2}, "2026-10", pace_s=0.25)
            await readers.run(1.0)
            return readers

    readers = asyncio.run(run())
    counts = {kind: len(stats.latencies_ms) for kind, stats in readers.stats.items()}
    # One second at one request per 0.25 s: at most 5 per reader (a slow machine only gives fewer).
    assert 1 <= counts["ranking"] <= 3 * 5 and 1 <= counts["public"] <= 2 * 5


def test_every_benchmark_names_a_module_with_a_main() -> None:
    for name in BENCHMARKS:
        assert callable(import_module(f"bench.{MODULES.get(name, name)}").main), name


def test_pg_activity_reports_shares_of_the_samples() -> None:
    views = {
        "active": Counter({"COMMIT;": 29, "SELECT 1": 10}),
        "cpu": Counter({"SELECT 1": 10}),
        "waits": Counter({"IO:WALSync COMMIT;": 29}),
        "events": Counter({"IO:WALSync": 29}),
    }
    text = report(100, views, top=5)
    assert "pg-activity: 100 samples" in text and "   0.290  COMMIT;" in text and "0.100  SELECT 1" in text
    # The maintenance database's DSN as asyncpg reads it: sslmode, not SQLAlchemy's ssl.
    assert (
        admin_dsn("postgresql+asyncpg://u@h:5432/sqi?ssl=require") == "postgresql://u@h:5432/postgres?sslmode=require"
    )


async def test_markers_on_both_sides_of_a_months_end_are_each_counted_in_their_month() -> None:
    """The probe's markers around midnight of 30 November (Vietnam time): each is awaited in the
    month it is completed in, against that month's own count."""
    counts = {"2026-11": 40, "2026-12": 0}

    class FakeResponse:
        def __init__(self, body: dict[str, int]) -> None:
            self.status_code, self._body = 200, body

        def json(self) -> dict[str, int]:
            return self._body

        def raise_for_status(self) -> None:
            return None

    class FakeGateway:
        async def get(self, url: str, headers: dict[str, str]) -> FakeResponse:
            return FakeResponse({"dossiers": counts[url.rsplit("=", 1)[1]]})

        async def post(self, url: str, content: bytes, headers: dict[str, str]) -> FakeResponse:
            completed = orjson.loads(content.splitlines()[1])["occurred_at"]  # Vietnam time
            counts[completed[:7]] += 1  # scored at once
            return FakeResponse({"accepted": 2})

    probe = MarkerProbe(None, "key", {})
    probe.client = FakeGateway()  # duck-typed: get and post
    for at in (datetime(2026, 11, 30, 16, 59, 59, tzinfo=UTC), datetime(2026, 11, 30, 17, 0, 1, tzinfo=UTC)):
        probe.clock = lambda at=at: at
        assert await probe.send_marker()
    assert [(p.period, p.target) for p in probe.pending] == [("2026-11", 41), ("2026-12", 1)]
    assert await probe.wait_visible(5.0) is not None  # a third marker, in December
    assert probe.take()["seen"] == 3


def test_a_process_ended_before_the_last_snapshot_keeps_its_group() -> None:
    # The simulator exits just before the phase's last snapshot: its command line is gone
    # (a zombie reads as "other"), its CPU is still there.
    before = (0.0, {11: ("simulator", 1.0), 12: ("gateway", 5.0)})
    after = (2.0, {11: ("other", 1.4), 12: ("gateway", 6.0), 13: ("other", 0.2)})

    cores = cpu_share.cores_between(before, after)

    assert cores == pytest.approx({"simulator": 0.2, "gateway": 0.5, "other": 0.1})


async def test_the_cached_reads_are_summed_over_the_apis_metrics_pages() -> None:
    from bench.live import cache_answers

    pages = {
        "/scoring/metrics": 'sqi_read_cache_answers_total{cache="scores",outcome="current"} 40.0\n'
        'sqi_read_cache_answers_total{cache="scores",outcome="waited"} 2.0\n',
        "/reporting/metrics": 'sqi_read_cache_answers_total{cache="pages",outcome="previous"} 3.0\n'
        "sqi_http_requests_total 9.0\n",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path not in pages:
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(200, text=pages[request.url.path])

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://gw") as client:
        urls = ["http://api/scoring/metrics", "http://api/reporting/metrics", "http://api/gone/metrics"]
        answers = await cache_answers(client, urls)
    assert answers == {"scores current": 40.0, "scores waited": 2.0, "pages previous": 3.0}


async def test_the_refresh_totals_are_summed_over_the_scoring_workers_pages() -> None:
    from bench.live import refresh_rows, refresh_totals

    one = (
        "sqi_judging_step_seconds_count 4.0\nsqi_judging_step_seconds_sum 2.0\n"
        "sqi_dossiers_judged_total 4000.0\n"
        'sqi_period_recompute_seconds_count{kind="month"} 4.0\n'
        'sqi_period_recompute_seconds_sum{kind="month"} 1.6\n'
        'sqi_period_recompute_seconds_bucket{kind="month",le="1.0"} 4.0\n'
        "sqi_freshness_seconds_count 10.0\nsqi_freshness_seconds_sum 25.0\n"
    )
    two = "sqi_judging_step_seconds_count 1.0\nsqi_judging_step_seconds_sum 1.0\nsqi_dossiers_judged_total 1000.0\n"
    pages = {"/one/metrics": one, "/two/metrics": two}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=pages[request.url.path])

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        totals = await refresh_totals(client, ["http://w/one/metrics", "http://w/two/metrics"])
    assert totals == {
        "judging steps": 5.0,
        "judging seconds": 3.0,
        "dossiers judged": 5000.0,
        "month recomputations": 4.0,
        "month seconds": 1.6,
        "freshness observations": 10.0,
        "freshness seconds": 25.0,
    }
    rows = {r[0]: r[1] for r in refresh_rows([{"rate": 2000.0, "refresh": totals}])}
    assert rows["judging step, mean s"] == "0.60"
    assert rows["judging ms a dossier (wall)"] == "0.60"
    assert rows["month recomputation, mean s"] == "0.40"
    assert rows["quarter recomputation, mean s"] == "–"  # none in the phase
    assert rows["freshness in scoring, mean s"] == "2.50"


def test_each_scoring_worker_serves_its_metrics_on_a_port_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.common import bench_platform, scoring_worker_metrics
    from sqi_cli import platform as platform_module

    started: list[tuple[str, dict[str, str]]] = []

    class Recorded:
        def __init__(self, argv: list[str], **kwargs: object) -> None:
            env = kwargs["env"]
            assert isinstance(env, dict)
            started.append((argv[-1], env))

    monkeypatch.setattr(platform_module.subprocess, "Popen", Recorded)
    running = bench_platform(scoring_workers=2, scoring_metrics=True)
    running.start()

    ports = sorted(running.worker_http_ports.values())
    assert set(running.worker_http_ports) == {"scoring-worker", "scoring-worker-2"}
    assert scoring_worker_metrics(running) == [f"http://127.0.0.1:{p}/metrics" for p in ports]
    served = {env.get("SQI_WORKER_HTTP_PORT") for command, env in started if command == "services.scoring.worker"}
    assert served == {str(p) for p in ports} and len(ports) == 2
    assert all("SQI_WORKER_HTTP_PORT" not in env for command, env in started if command != "services.scoring.worker")
