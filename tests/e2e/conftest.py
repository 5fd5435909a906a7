"""The whole platform, started once per run the way ``./sqi up --no-sim`` starts it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from shared.settings import CommonSettings
from sqi_cli.migrate import migrate, subscriptions
from sqi_cli.platform import Platform
from sqi_cli.scratch import delete_broker_objects, free_port_block, recreate_database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The schemathesis run writes random units, keys and days off: it goes last."""
    items.sort(key=lambda item: "test_schemathesis.py" in item.nodeid)


@pytest.fixture(scope="session")
def platform() -> Iterator[str]:
    settings = CommonSettings()
    asyncio.run(recreate_database(settings.asyncpg_dsn))
    migrate(settings)
    running = Platform(free_port_block(5))
    running.start()
    try:
        if not running.wait_ready(90):
            raise RuntimeError("the platform did not become ready")
        yield f"http://127.0.0.1:{running.port}"
    finally:
        running.stop()
        subs = subscriptions()
        asyncio.run(
            delete_broker_objects(
                settings,
                [s.queue for s in subs],
                sorted(
                    {s.exchange for s in subs}
                    | {"ingest.events", "scoring.events", "feedback.events", "reporting.events"}
                ),
            )
        )


@pytest.fixture(scope="session")
def admin_token() -> str:
    return mint_dev_token(GatewaySettings(), sub="test-admin", role="admin", unit="CT")


@pytest.fixture(scope="session")
def gateway(platform: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def make_key(gateway: httpx.Client, admin_token: str):  # type: ignore[no-untyped-def]
    def make(source: str, units: list[str]) -> str:
        response = gateway.post(
            "/api/v1/keys", json={"source": source, "units": units}, headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    return make
