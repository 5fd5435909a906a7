"""Chaos, short form: SIGKILL a worker, an API and the gateway mid-stream; nothing lost, nothing twice.

The long form (every process, RabbitMQ and PostgreSQL restarts) is ``./sqi bench chaos``, run by
hand (``docs/reliability.md``): restarting the machine's shared servers has no place in a suite.
This platform is the test's own (its database and bus prefix), since the test kills its processes.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from bench.chaos import ChaosOptions, chaos, chaos_platform, print_report
from shared.settings import CommonSettings
from sqi_cli.migrate import migrate, subscriptions
from sqi_cli.scratch import delete_broker_objects, drop_database, recreate_database, scratch_database_url

pytestmark = pytest.mark.e2e
EXCHANGES = ("ingest.events", "scoring.events", "feedback.events", "reporting.events")


def test_killed_worker_api_and_gateway_lose_nothing_and_apply_nothing_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its own database and bus prefix, for this process (migrate's seeding reads the environment)
    # and for the platform's processes, which inherit it.
    monkeypatch.setenv("SQI_DATABASE_URL", scratch_database_url("sqi_chaos"))
    monkeypatch.setenv("SQI_BUS_PREFIX", f"{os.environ['SQI_BUS_PREFIX']}chaos.")
    settings = CommonSettings()
    asyncio.run(recreate_database(settings.asyncpg_dsn))
    migrate(settings)
    platform = chaos_platform()
    platform.start()
    try:
        assert platform.wait_ready(90), "the platform did not become ready"
        opts = ChaosOptions(
            rate=100,
            kills=("scoring-worker", "ingest-api", "gateway", "ingest-worker"),
            down=1.0,
            steady=4.0,
            drain_timeout=60,
            recompute_timeout=120,
        )
        report = asyncio.run(chaos(platform, settings, opts))
    finally:
        platform.stop()
        subs = subscriptions()
        asyncio.run(delete_broker_objects(settings, [s.queue for s in subs], [*EXCHANGES]))
        asyncio.run(drop_database(settings.asyncpg_dsn))
    print_report(report)
    checks, sender = report["checks"], report["sender"]
    assert checks["confirmed"] > 1000, "the stream carried too little to prove anything"
    assert sender["attempts_failed"] > 0, "no request failed: the kills did not hit the stream"
    assert checks["lost"] == 0, f"events answered 200 but missing from the raw log: {checks['lost_sample']}"
    assert checks["raw_more_than_once"] == 0 and checks["raw_not_sent"] == 0
    assert checks["dossiers_differing"] == 0, "scoring's events per dossier differ from the raw log's"
    assert checks["scoring_settled"], "scoring never settled (dossiers to judge or periods to recompute)"
    assert sender["gave_up"] == 0 and sender["rejected"] == 0
    assert report["recompute"]["status"] == 0, report["recompute"]
    assert not any("exited by itself" in step["what"] for step in report["steps"]), report["steps"]
    assert report["ok"]
