"""Flags of changed dossiers (cờ hồ sơ thay đổi): the consumer raises them, judging takes them.

The consumer that stores a new event of a dossier must make it due for judging. It did so on the
dossier's own row (``recheck_at`` = the epoch), which a judging chunk holds locked while it
judges: under a stream the consumer waited for chunk after chunk (≈ 30 % of its time at 2,000
events/s), holding its own transaction, its locks and its messages meanwhile. The flag is a row
of ``scoring.dossier_flag`` instead: :func:`raise_flags` in the consumer's transaction,
:func:`take_flags` in a judging chunk's, which deletes the flags of events accepted before its
step began and judges those dossiers (folding all their events) in the same transaction.

Until session 17 a judging step first handed the flags over onto the dossiers (``recheck_at`` =
the epoch) in transactions of their own, and chunks claimed them from there: a second update of
the wide dossier row a changed dossier, ≈ 40 % of judging's statement time with the store's
(docs/performance.md, session 17). Now the store's is the only one (migration 0022).

Neither side waits for the other: a flag is a row of its own per dossier and batch, so a consumer
only ever inserts; a chunk takes the flags committed when it looks (one a consumer's open
transaction inserted is not there yet: taken next step, once committed), and a flag raised while
its dossier is being judged — an event the chunk did not read — is a new row, judged at the next
step. A chunk picks a dossier by locking its row ``SKIP LOCKED``, so it never waits for a row
lock either. Every flag's dossier has a row, committed with the flag (``_RAISE``, and feedback's
``_FLAG_FEEDBACK``): a chunk only updates rows, so nothing that flags a dossier by its row (a
rating, a catalogue change, a declared day) can miss one a chunk is judging."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.scoring.adapters.tables import REJUDGE

# One row per dossier and batch, inserted, never updated: nothing here can wait for a judging
# chunk, which deletes the flags it takes (its lock on them is the deletion's).
# A dossier new to scoring gets its (empty) row in the same statement, committed with its first
# flag: a chunk only ever updates rows that exist, as every other writer of ``recheck_at`` does.
# Were the chunk to insert it, the row would be invisible until the chunk commits, and a rating
# arriving meanwhile (``flag_for_feedback``'s ``UPDATE``), or a calendar change's re-judging,
# would find no row to flag while the chunk had already read the ratings: the rating lost until
# the dossier's next event (session 17's end-to-end month: 5.4 one too high). Only dossiers the
# statement's snapshot does not see are inserted, so a known dossier costs one index probe and
# never waits for the chunk updating its row.
_RAISE = """
WITH new_dossiers AS (
    INSERT INTO scoring.dossier (dossier_id)
    SELECT i FROM unnest($1::text[]) AS v(i)
    WHERE NOT EXISTS (SELECT 1 FROM scoring.dossier d WHERE d.dossier_id = v.i)
    ORDER BY i ON CONFLICT DO NOTHING
)
INSERT INTO scoring.dossier_flag (dossier_id, accepted_at, traceparent)
SELECT i, a, t FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS v(i, a, t)
"""
# Which dossiers a chunk takes: up to $2 flagged by events accepted before $1 (a flag without an
# acceptance time — a replay, a recomputation — at once), in id order, whatever their number of
# flags (a back-fill's dossier has one a batch that touched it), each by locking its dossier row
# ``SKIP LOCKED``: a dossier another chunk holds (a lane from the same end, or a chunk due by time)
# or a writer of ``recheck_at`` holds (a catalogue change, a declared day) is left flagged for
# later, so a chunk never waits for a row lock and no cycle can include one (session 18's review
# found two with the first flag as the pick's lock: flag ids are given at insert, batches commit
# in any order, so two chunks could each lock a different "first" flag of one dossier and wait
# for each other's; and a feedback transaction rating two dossiers in message order).
# Driven by the flags (few) into the dossiers' primary key, never the other way round.
_PICK = """
SELECT d.dossier_id
FROM (SELECT DISTINCT dossier_id FROM scoring.dossier_flag WHERE accepted_at IS NULL OR accepted_at < $1) AS f
JOIN scoring.dossier d ON d.dossier_id = f.dossier_id
ORDER BY d.dossier_id {order} LIMIT $2 FOR UPDATE OF d SKIP LOCKED
"""
PICK_FROM_START = _PICK.format(order="ASC")
PICK_FROM_END = _PICK.format(order="DESC")
# Their flags, deleted by key: only the chunk holding a dossier's row deletes its flags, so none is
# locked by anyone (a consumer's new flag is not visible yet: taken next step). The ids are chosen
# by one sub-select run once (``ARRAY(…)``: an InitPlan). Written ``IN (SELECT …)``, the planner
# was free to make the sub-select the inner side of a nested loop, run again for every flag:
# quadratic. It did so with a plan made while the table was empty — a queue table is, after every
# judging step, and VACUUM then truncates it to no pages — and kept as the prepared statement's
# generic plan: under the 2,000 events/s stream one statement over 8,835 flags ran 62 s on the CPU
# while every consumer waited behind its locks (docs/performance.md, session 12). The transaction
# is KEYED_ONLY too: a scan of the table for the ``= ANY`` would still cost flags × taken.
TAKE = """
DELETE FROM scoring.dossier_flag WHERE id = ANY(ARRAY(
    SELECT id FROM scoring.dossier_flag
    WHERE dossier_id = ANY($1::text[]) AND (accepted_at IS NULL OR accepted_at < $2)))
RETURNING dossier_id, accepted_at, traceparent
"""


# Due times, fees and targets come from the catalogue, working days from the calendar: when they
# change, dossiers are judged again from their stored facts (a dossier flagged with the epoch
# stays so: its events changed). Row locks in dossier_id order, as a chunk's: no deadlock; it
# waits for a chunk holding one.
_REJUDGE = """
UPDATE scoring.dossier SET recheck_at = least(recheck_at, $1) WHERE dossier_id IN (
    SELECT dossier_id FROM scoring.dossier {where} ORDER BY dossier_id FOR UPDATE)
"""
_REJUDGE_PROCEDURES = _REJUDGE.format(where="WHERE procedure_code = ANY($2::text[])")
_REJUDGE_ALL = _REJUDGE.format(where="")


async def rejudge_procedures(conn: Any, codes: Sequence[str]) -> int:
    """Make the dossiers of the procedures ``codes`` due for judging again (their events
    unchanged); returns how many."""
    status = await conn.execute(_REJUDGE_PROCEDURES, REJUDGE, list(codes))
    return int(status.split()[-1])  # "UPDATE n"


async def rejudge_all(conn: Any) -> None:
    """Make every dossier due for judging again (the working calendar changed)."""
    await conn.execute(_REJUDGE_ALL, REJUDGE)


async def raise_flags(
    conn: Any, ids: Sequence[str], accepted: Sequence[datetime | None], traces: Sequence[str | None]
) -> None:
    """Flag ``ids`` as changed by a batch accepted at ``accepted`` (``None``: judge at the next
    step whatever its start) with the batch's trace."""
    await conn.execute(_RAISE, list(ids), list(accepted), list(traces))


async def take_flags(conn: Any, *, accepted_before: datetime, limit: int, from_end: bool = False) -> list[Any]:
    """Lock the rows of up to ``limit`` dossiers flagged by events accepted before
    ``accepted_before``, the first in ``dossier_id`` order (the last with ``from_end``) not held
    by another transaction, and take (delete) those flags: rows ``(dossier_id, accepted_at,
    traceparent)``. In the caller's transaction — the judging chunk's, which makes it
    :data:`KEYED_ONLY` — so the flags come back if the chunk fails, and the rows stay locked
    until it commits."""
    pick = PICK_FROM_END if from_end else PICK_FROM_START
    picked = [r[0] for r in await conn.fetch(pick, accepted_before, limit)]
    if not picked:
        return []
    return list(await conn.fetch(TAKE, picked, accepted_before))
