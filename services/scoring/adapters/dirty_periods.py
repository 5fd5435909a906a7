"""The one way to mark periods dirty (kỳ cần tính lại) and to claim a marked period.

Every writer — the consumer's handlers, judging, a methodology upload, a calendar change —
marks through :func:`mark_periods` or :func:`mark_scored_periods`, inside its own transaction:
each mark is a row of its own, inserted and never updated, so marking never waits for anyone.

A recomputation claims a period with :func:`claim_period` as the first statement of a
``REPEATABLE READ`` transaction: it takes the period's lease (a transaction-scoped advisory
lock, tried, never waited for: another worker skips the period), then deletes the period's marks
*that its snapshot sees* and computes from that same snapshot. A mark committed later — or still
uncommitted, its facts with it — is invisible to both the deletion and the counts, so it stays
for the next recomputation: nothing counted is lost and nothing is read half-written (the unit
counters and the per-procedure counters come from one snapshot). A worker that dies aborts its
transaction; the marks and the lease come back with it.

Before session 16 a period was one row, upserted by every mark and deleted by the claim, whose
row lock made a judging chunk wait for the whole recomputation (docs/decisions.md, session 16).
``accepted_at``: when ingest accepted the batches the next recomputation will count (the
freshness clock, ``sqi_freshness_seconds``); the claim returns the union of its marks'.
``traceparents``: the traces of those changes, which the recomputation's span links to (at most
``MAX_LINKS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain import Period, parse_period
from shared.db import driver_connection

MAX_LINKS = 64  # traces a refresh span links to, at most (the latest changes' first)
_MARK = """
INSERT INTO scoring.dirty_period (period, accepted_at, traceparents)
SELECT p, $2::timestamptz[], $3::text[] FROM unnest($1::text[]) AS p
"""
_MARK_SCORED = """
INSERT INTO scoring.dirty_period (period)
SELECT p FROM (SELECT DISTINCT period FROM scoring.score UNION SELECT unnest($1::text[])) AS s(p)
"""
_LABELS = "SELECT DISTINCT period FROM scoring.dirty_period"
# The lease: two keys (a namespace, the label's hash). Two labels of one hash share a lease: one
# of them waits a tick, no more.
LEASE_NAMESPACE = 0x5351  # "SQ"
_LEASE = "SELECT pg_try_advisory_xact_lock($1, hashtext($2))"
_TAKE = """
DELETE FROM scoring.dirty_period WHERE period = $1
RETURNING accepted_at, traceparents, id
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed period's marks, merged: the batches it counts and the traces of its changes."""

    accepted_at: list[datetime]
    traceparents: list[str]


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


_LAST_COMPUTED = "SELECT period, min(computed_at) FROM scoring.period_state GROUP BY period"


async def _computed_periods(conn: Any) -> list[tuple[str, Period, datetime]]:
    """Every stored period with its last computation (a label no longer accepted — history,
    never recomputed — left out)."""
    out = []
    for label, computed_at in await conn.fetch(_LAST_COMPUTED):
        try:
            out.append((label, parse_period(label), computed_at))
        except ValueError:
            continue
    return out


async def mark_closed_periods(session: AsyncSession, now: datetime) -> list[str]:
    """Mark the periods that ended since they were last computed; returns them.

    A closed period is judged at its end (``Period.judged_at``). Its dossiers mark it when they
    are judged again at the next month's start, but nothing else that time alone changes does —
    an open petition that went overdue before the end, an office with no dossier left open —
    so its figures stayed those of its last computation inside it (5.2 and 5.3 at 6 points for a
    petition nine days overdue: the scoring-correctness audit, session 17). Each period once: its
    recomputation is stamped with an instant at or after its end."""
    conn: Any = await driver_connection(session)
    ended = [label for label, period, at in await _computed_periods(conn) if at < period.end <= now]
    await mark_periods(session, ended)
    return ended


# The latest deadline of a petition (to refuse, to ask for information, to answer, to publish)
# that passed by $2, among those received since $1: each can turn it from "not yet due" to
# overdue (5.2, 5.3) with no message to say so.
_PETITION_DUE = """
SELECT max(d) FROM scoring.petition p,
    unnest(ARRAY[(p.data->>'refuse_due_at')::timestamptz, (p.data->>'info_due_at')::timestamptz,
                 (p.data->>'answer_due_at')::timestamptz, (p.data->>'publish_due_at')::timestamptz]) AS d
WHERE p.received_at >= $1 AND d <= $2
"""
PETITION_LOOKBACK = timedelta(days=366)  # a petition received the year before may fall due now


async def mark_periods_past_petition_deadlines(session: AsyncSession, now: datetime) -> list[str]:
    """Mark the running periods computed before a petition deadline that has passed by ``now``
    (a period that ended is :func:`mark_closed_periods`'s); returns them. The live refresher
    calls it once a minute: what a deadline changes shows within about a minute."""
    conn: Any = await driver_connection(session)
    running = [(label, period, at) for label, period, at in await _computed_periods(conn) if period.contains(now)]
    if not running:
        return []
    since = min(period.start for _, period, _ in running) - PETITION_LOOKBACK
    latest = await conn.fetchval(_PETITION_DUE, since, now)
    passed = [label for label, _, at in running if latest is not None and at < latest]
    await mark_periods(session, passed)
    return passed


async def dirty_labels(session: AsyncSession) -> list[str]:
    """The periods marked dirty (committed marks), each once."""
    conn: Any = await driver_connection(session)
    return [r[0] for r in await conn.fetch(_LABELS)]


async def claim_period(session: AsyncSession, label: str) -> Claimed | None:
    """Take ``label``'s lease and its marks in the caller's transaction, which must be
    ``REPEATABLE READ`` and not have read anything yet (this is its snapshot); None when another
    worker holds the lease or no mark is left."""
    conn: Any = await driver_connection(session)
    if not await conn.fetchval(_LEASE, LEASE_NAMESPACE, label):
        return None
    marks = await conn.fetch(_TAKE, label)
    if not marks:
        return None
    accepted = sorted({t for m in marks for t in m[0] or ()})
    traces: list[str] = []
    for m in sorted(marks, key=lambda m: -m[2]):  # the latest marks' traces first
        traces += [t for t in m[1] or () if t not in traces]
    return Claimed(accepted, traces[:MAX_LINKS])
