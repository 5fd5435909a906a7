"""Flags of changed dossiers (cờ hồ sơ thay đổi): the consumer raises them, judging takes them.

The consumer that stores a new event of a dossier must make it due for judging. It did so on the
dossier's own row (``recheck_at`` = the epoch), which a judging chunk holds locked while it
judges: under a stream the consumer waited for chunk after chunk (≈ 30 % of its time at 2,000
events/s), holding its own transaction, its locks and its messages meanwhile. The flag is now a
row of ``scoring.dossier_flag``, which judging never holds: :func:`raise_flags` in the
consumer's transaction, :func:`hand_over` at the start of each judging step, which moves the
flags of events accepted before the step began onto the dossiers (the epoch, as before) in
short transactions of their own.

Neither side waits for the other: the hand-over takes flags ``FOR UPDATE SKIP LOCKED`` (a flag
being raised by a consumer's open transaction is handed over next tick, once committed), and a
consumer raising a flag being handed over waits only for that short transaction, then raises it
anew — so an event stored meanwhile is judged at the next step, as when it waited for a chunk.
Both lock flags in ``dossier_id`` order: no deadlock between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.scoring.adapters.tables import EPOCH, KEYED_ONLY

HAND_OVER_CHUNK = 5000  # flags per hand-over transaction: a consumer meeting one waits ≈ 0.1 s at most

# The input is sorted by dossier_id: two batches raising overlapping flags take them in one order.
_RAISE = """
INSERT INTO scoring.dossier_flag AS f (dossier_id, accepted_at, traceparent)
SELECT i, a, t FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS v(i, a, t)
ON CONFLICT (dossier_id) DO UPDATE SET
    accepted_at = least(f.accepted_at, excluded.accepted_at),
    traceparent = coalesce(excluded.traceparent, f.traceparent)
"""
# A flag without an acceptance time (a replay, a recomputation) is handed over at once.
# The flags are chosen by one sub-select run once (``ARRAY(…)``: an InitPlan), then deleted by key.
# Written ``IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)``, the planner was free to make the
# sub-select the inner side of a nested loop, run again for every flag: quadratic. It did so with
# a plan made while the table was empty — a queue table is, after every hand-over, and VACUUM
# then truncates it to no pages — and kept as the prepared statement's generic plan: under the
# 2,000 events/s stream one hand-over of 8,835 flags ran 62 s on the CPU while every consumer
# waited behind its locks (docs/performance.md, session 12). The transaction is KEYED_ONLY too:
# a scan of the table for the ``= ANY`` would still cost flags × taken.
_HAND_OVER = """
WITH taken AS (
    DELETE FROM scoring.dossier_flag WHERE dossier_id = ANY(ARRAY(
        SELECT dossier_id FROM scoring.dossier_flag WHERE accepted_at IS NULL OR accepted_at < $1
        ORDER BY dossier_id LIMIT $2 FOR UPDATE SKIP LOCKED))
    RETURNING dossier_id, accepted_at, traceparent
)
INSERT INTO scoring.dossier AS d (dossier_id, recheck_at, accepted_at, traceparent)
SELECT dossier_id, $3::timestamptz, accepted_at, traceparent FROM taken ORDER BY dossier_id
ON CONFLICT (dossier_id) DO UPDATE SET
    recheck_at = excluded.recheck_at, unjudgeable = NULL,
    accepted_at = least(d.accepted_at, excluded.accepted_at),
    traceparent = coalesce(excluded.traceparent, d.traceparent)
"""


async def raise_flags(
    conn: Any, ids: Sequence[str], accepted: Sequence[datetime | None], traces: Sequence[str | None]
) -> None:
    """Flag ``ids`` (sorted) as changed: the earliest acceptance time of their pending events and
    the latest trace are kept (``None`` keeps the one held)."""
    await conn.execute(_RAISE, list(ids), list(accepted), list(traces))


async def hand_over(conn: Any, *, accepted_before: datetime, limit: int = HAND_OVER_CHUNK) -> int:
    """Move up to ``limit`` flags of events accepted before ``accepted_before`` onto their dossiers
    (due at the epoch: judged at this step); returns how many (fewer than ``limit``: none left).
    In the caller's transaction, which it makes :data:`KEYED_ONLY`."""
    await conn.execute(KEYED_ONLY)
    status: str = await conn.execute(_HAND_OVER, accepted_before, limit, EPOCH)
    return int(status.rsplit(" ", 1)[-1])
