"""Keeping the outbox and inbox small: old rows are deleted in bounded chunks.

Published outbox rows are kept a while for diagnosis; inbox rows must outlive any
redelivery (retries take seconds to minutes), so a week is far beyond what dedupe needs.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.periodic import run_every

log = logging.getLogger(__name__)

CHUNK = 5_000


async def purge_once(engine: AsyncEngine, *, outbox: Table, inbox: Table, keep: timedelta) -> int:
    """Delete published outbox rows and inbox rows older than ``keep``; returns rows deleted."""
    deleted = 0
    statements = (
        f"DELETE FROM {outbox.schema}.{outbox.name} WHERE id IN (SELECT id FROM {outbox.schema}.{outbox.name} "
        "WHERE published_at < now() - CAST(:keep AS interval) LIMIT :chunk)",
        f"DELETE FROM {inbox.schema}.{inbox.name} WHERE ctid IN (SELECT ctid FROM {inbox.schema}.{inbox.name} "
        "WHERE received_at < now() - CAST(:keep AS interval) LIMIT :chunk)",
    )
    for statement in statements:
        while True:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), {"keep": keep, "chunk": CHUNK})
            count = result.rowcount or 0
            deleted += count
            if count < CHUNK:
                break
    return deleted


async def run_housekeeping(
    engine: AsyncEngine,
    *,
    outbox: Table,
    inbox: Table,
    stop: asyncio.Event,
    keep: timedelta = timedelta(days=7),
    every_s: float = 3600,
) -> None:
    async def purge() -> None:
        deleted = await purge_once(engine, outbox=outbox, inbox=inbox, keep=keep)
        if deleted:
            log.info("housekeeping deleted old outbox and inbox rows", extra={"rows": deleted})

    await run_every(every_s, purge, stop=stop, name="housekeeping")
