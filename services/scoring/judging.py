"""Judging flagged dossiers into contributions, in bounded chunks, off the event loop.

A dossier is due for judging when ``recheck_at < now``: the consumer sets the epoch when it
refolds one (the catalogue handler for a changed procedure); :mod:`services.scoring.contributions`
sets the next instant time alone changes a verdict. Strictly before: a verdict judged at a
threshold ``t`` is still exact at ``t`` (a fact at ``t`` is known only after ``t``, a due time ``t``
is passed only after ``t``), and ``<=`` would re-judge it forever within one tick.

Each chunk: claim rows ``FOR UPDATE SKIP LOCKED`` (the consumer waits for a chunk's
rows, the refresher never waits for the consumer: no deadlock), judge in a worker thread (the
event loop keeps consuming), write only the rows that changed, mark their periods dirty — all
in the caller's transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.codec import facts_from_json
from services.scoring.contributions import Contribution, changed_periods, contributions
from services.scoring.domain import Procedure
from shared.calendar import WorkingCalendar
from shared.db import driver_connection as driver

CHUNK = 250  # ~40 ms of judging: the row locks a consumer may wait for are held briefly

_CLAIM = """
SELECT dossier_id, facts::text FROM scoring.dossier
WHERE recheck_at < $1 ORDER BY recheck_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
_OLD = """
SELECT dossier_id, period, unit_code, procedure_code, flags, handling_days
FROM scoring.contribution WHERE dossier_id = ANY($1::text[])
"""
_DELETE = """
DELETE FROM scoring.contribution c USING unnest($1::text[], $2::text[]) AS k(d, p)
WHERE c.dossier_id = k.d AND c.period = k.p
"""
_RECHECK = """
UPDATE scoring.dossier d SET recheck_at = k.r
FROM unnest($1::text[], $2::timestamptz[]) AS k(i, r) WHERE d.dossier_id = k.i
"""
_MARK = """
INSERT INTO scoring.dirty_period (period) SELECT unnest($1::text[])
ON CONFLICT (period) DO UPDATE SET marked_at = now()
"""
COLUMNS = ("period", "dossier_id", "unit_code", "procedure_code", "flags", "handling_days")


def judge_rows(
    rows: list[tuple[str, str]], procedures: Mapping[str, Procedure], now: datetime, calendar: WorkingCalendar
) -> tuple[list[Contribution], list[datetime | None]]:
    """CPU only (runs in a thread): facts → contributions and recheck instants."""
    out: list[Contribution] = []
    rechecks: list[datetime | None] = []
    procs = dict(procedures)
    for _, facts_text in rows:
        cs, recheck = contributions(facts_from_json(orjson.loads(facts_text), procs), now, calendar)
        out += cs
        rechecks.append(recheck)
    return out, rechecks


async def judge_chunk(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
    limit: int = CHUNK,
) -> int:
    """Judge up to ``limit`` due dossiers; returns how many were claimed (0: none left)."""
    conn: Any = await driver(session)
    claimed = [(r[0], r[1]) for r in await conn.fetch(_CLAIM, now, limit)]
    if not claimed:
        return 0
    ids = [d for d, _ in claimed]
    new, rechecks = await asyncio.to_thread(judge_rows, claimed, procedures, now, calendar)
    old = {(r[0], r[1]): Contribution(r[0], r[1], r[2], r[3], r[4], r[5]) for r in await conn.fetch(_OLD, ids)}
    fresh = {(c.dossier_id, c.period): c for c in new}
    stale = [k for k, o in old.items() if fresh.get(k) != o]
    if stale:
        await conn.execute(_DELETE, [k[0] for k in stale], [k[1] for k in stale])
    writes = [c for k, c in fresh.items() if old.get(k) != c]
    if writes:
        await conn.copy_records_to_table(
            "contribution",
            schema_name="scoring",
            columns=COLUMNS,
            records=[(c.period, c.dossier_id, c.unit_code, c.procedure_code, c.flags, c.handling_days) for c in writes],
        )
    await conn.execute(_RECHECK, ids, rechecks)
    periods = sorted(changed_periods(old, new))
    if periods:
        await conn.execute(_MARK, periods)
    return len(claimed)


async def judge_due(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
) -> int:
    """Judge every due dossier inside the caller's transaction (tests, direct recomputation)."""
    total = 0
    while n := await judge_chunk(session, now=now, calendar=calendar, procedures=procedures):
        total += n
    return total
