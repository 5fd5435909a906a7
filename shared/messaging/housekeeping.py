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
# Each purge is planned when it runs, for the table as it is then. A prepared statement's generic
# plan is made once, and one made while a table was small made the ``LIMIT`` sub-select the inner
# side of a nested loop, run again for every row: with a plan cached over an empty inbox, a purge
# of 20,000 old rows ran 86 s (docs/decisions.md, session 12). Planning once an hour costs nothing.
PLANNED_NOW = "SET LOCAL plan_cache_mode = force_custom_plan"


def purge_statements(*, outbox: Table, inbox: Table) -> tuple[str, str]:
    """The outbox's and the inbox's purge, a chunk at a time (``:keep``, ``:chunk``)."""
    return (
        f"DELETE FROM {outbox.schema}.{outbox.name} WHERE id IN (SELECT id FROM {outbox.schema}.{outbox.name} "
        "WHERE published_at < now() - CAST(:keep AS interval) LIMIT :chunk)",
        f"DELETE FROM {inbox.schema}.{inbox.name} WHERE ctid IN (SELECT ctid FROM {inbox.schema}.{inbox.name} "
        "WHERE received_at < now() - CAST(:keep AS interval) LIMIT :chunk)",
    )


async def purge_once(engine: AsyncEngine, *, outbox: Table, inbox: Table, keep: timedelta) -> int:
    """Delete published outbox rows and inbox rows older than ``keep``; returns rows deleted."""
    deleted = 0
    for statement in purge_statements(outbox=outbox, inbox=inbox):
        while True:
            async with engine.begin() as conn:
                await conn.execute(text(PLANNED_NOW))
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
