"""The one way to mark periods dirty (kỳ cần tính lại): the refresher recomputes them next tick.

Every writer — the consumer's handlers, judging, a methodology upload, a calendar change —
marks through these two functions, inside its own transaction. ``ON CONFLICT DO UPDATE`` (not
``DO NOTHING``) locks the mark until that transaction ends: a refresher claims marks
``FOR UPDATE SKIP LOCKED``, so it skips a period whose new facts are not committed yet and takes
it at the next tick, never reading the facts from before them and dropping the mark.
``accepted_at``: when ingest accepted the batches the next recomputation will count (the
freshness clock, ``sqi_freshness_seconds``); the marks keep the union. ``traceparents``: the
traces of those changes, which the recomputation's span links to (at most ``MAX_LINKS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import driver_connection

MAX_LINKS = 64  # traces a refresh span links to, at most (the latest changes' first)
_MARK = f"""
INSERT INTO scoring.dirty_period AS d (period, accepted_at, traceparents)
SELECT p, $2::timestamptz[], $3::text[] FROM unnest($1::text[]) AS p ORDER BY p
ON CONFLICT (period) DO UPDATE SET marked_at = now(),
    accepted_at = (SELECT array_agg(DISTINCT t) FROM unnest(d.accepted_at || excluded.accepted_at) AS t),
    traceparents = (excluded.traceparents || coalesce(d.traceparents, '{{}}'))[1:{MAX_LINKS}]
"""
_MARK_SCORED = """
INSERT INTO scoring.dirty_period (period)
SELECT p FROM (SELECT DISTINCT period FROM scoring.score UNION SELECT unnest($1::text[])) AS s(p) ORDER BY p
ON CONFLICT (period) DO UPDATE SET marked_at = now()
"""


async def mark_periods(
    session: AsyncSession,
    periods: Iterable[str],
    accepted_at: Sequence[datetime] = (),
    traceparents: Sequence[str] = (),
) -> None:
    """Mark ``periods`` dirty (in the caller's transaction), with the batches they will count and
    the traces of those changes."""
    labels = sorted(set(periods))
    if labels:
        conn: Any = await driver_connection(session)
        await conn.execute(_MARK, labels, list(accepted_at), list(traceparents)[:MAX_LINKS])


async def mark_scored_periods(session: AsyncSession, also: Iterable[str] = ()) -> None:
    """Mark every period with stored scores dirty, and ``also`` (a catalogue, unit tree,
    methodology or calendar change touches them all)."""
    conn: Any = await driver_connection(session)
    await conn.execute(_MARK_SCORED, sorted(set(also)))
