"""``./sqi up`` warns, in one line, when PostgreSQL cannot give the platform its connections."""

from __future__ import annotations

from shared.settings import CommonSettings
from sqi_cli.platform import Platform
from sqi_cli.preflight import connection_shortfall


def test_a_platform_that_fits_gets_no_warning_and_one_that_does_not_is_told_why() -> None:
    url = CommonSettings().database_url
    assert connection_shortfall(url, needed=1) is None
    line = connection_shortfall(url, needed=100_000)
    assert line is not None
    assert "connections free" in line and "SQI_DB_POOL_SIZE" in line and "max_connections" in line


def test_the_estimate_counts_every_process_the_platform_starts() -> None:
    platform = Platform(18_000, replicas={"scoring": 2})
    names = [name for name, _ in platform.commands()]
    assert names.count("gateway") == 1 and "scoring-worker-2" in names
    assert platform.connections_needed(4) == len(names) * 5
