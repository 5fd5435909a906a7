"""Old published outbox rows and old inbox rows are purged; pending and recent ones stay."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.adapters.tables import inbox, outbox
from shared.messaging.housekeeping import purge_once
from shared.migrations import upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_housekeeping")


def test_purge_keeps_pending_and_recent_rows() -> None:
    from pathlib import Path

    asyncio.run(recreate_database(DB.replace("+asyncpg", "")))
    upgrade(Path(__file__).resolve().parents[2] / "services/ingest/migrations", DB)

    async def scenario() -> tuple[int, list[str], list[str]]:
        conn = await asyncpg.connect(DB.replace("+asyncpg", ""))
        await conn.execute(
            """INSERT INTO ingest.outbox (id, exchange, routing_key, body, created_at, published_at) VALUES
               (gen_random_uuid(), 'x', 'old-published', '', now() - interval '9 days', now() - interval '9 days'),
               (gen_random_uuid(), 'x', 'old-pending', '', now() - interval '9 days', NULL),
               (gen_random_uuid(), 'x', 'recent-published', '', now(), now());
               INSERT INTO ingest.inbox (consumer, message_id, received_at) VALUES
               ('c', 'old', now() - interval '9 days'), ('c', 'recent', now())"""
        )
        engine = create_async_engine(DB)
        deleted = await purge_once(engine, outbox=outbox, inbox=inbox, keep=timedelta(days=7))
        await engine.dispose()
        left_out = [r["routing_key"] for r in await conn.fetch("SELECT routing_key FROM ingest.outbox ORDER BY 1")]
        left_in = [r["message_id"] for r in await conn.fetch("SELECT message_id FROM ingest.inbox ORDER BY 1")]
        await conn.close()
        return deleted, left_out, left_in

    deleted, left_out, left_in = asyncio.run(scenario())
    assert deleted == 2
    assert left_out == ["old-pending", "recent-published"]
    assert left_in == ["recent"]
