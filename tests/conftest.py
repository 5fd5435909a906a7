"""Test-wide settings: a test database and a private broker namespace per run.

Environment first, before any SQI module reads its settings: every test (and every process
a test starts) talks to the database ``sqi_test`` (suffixed with ``SQI_TEST_DB_SUFFIX`` when
set) and to exchanges and queues prefixed with this run's id, so a test run never touches a running platform's data.
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "SQI_DATABASE_URL",
    f"postgresql+asyncpg://postgres@127.0.0.1:5432/sqi_test{os.environ.get('SQI_TEST_DB_SUFFIX', '')}",
)
os.environ["SQI_BUS_PREFIX"] = f"test{os.getpid()}."
os.environ["SQI_ENVIRONMENT"] = "test"
os.environ.setdefault("SQI_LOG_LEVEL", "WARNING")

pytest_plugins = ["tests.pool_leaks"]
