"""Judging flagged dossiers into contributions, in bounded chunks, off the event loop.

A dossier is due for judging when ``recheck_at < now``: the consumer sets the epoch when it
stores a new event of it (the catalogue handler for a changed procedure), and at most the
rating's or petition's own instant when a rating of it, or a petition naming it, arrives (its
facts did not change: nothing to store); :mod:`services.scoring.domain.contributions` sets the
next instant time alone changes a verdict.
Strictly before: a verdict judged at a threshold ``t`` is still exact at ``t`` (a fact at ``t`` is
known only after ``t``, a due time ``t`` is passed only after ``t``), and ``<=`` would re-judge it
forever within one tick.

Each chunk: claim rows ``FOR UPDATE SKIP LOCKED`` (the consumer waits for a chunk's
rows, the refresher never waits for the consumer: no deadlock), read the events of the claimed
dossiers that judging needs (below), their ratings and the petitions naming them (5.4) and their
stored contributions, then decode, fold, judge and compare them in a
worker thread (the event loop keeps consuming: it only sends and receives the statements), store
the facts of the dossiers folded from events, write only the contributions that changed, mark
their periods dirty — all in the caller's transaction, with the difference applied to the
per-unit counters (:mod:`services.scoring.adapters.tallies`).

A dossier's facts are judged from what is stored whenever that is exact (:func:`plan`). Stored
facts carry their :class:`~services.scoring.adapters.codec.FoldMark` — the latest ``occurred_at``
and the number of the dossier's event rows folded into them — and the fold's version:

* due but not flagged with the epoch (time alone, or feedback, changes its verdict): no event
  arrived since its facts were stored (every stored event flags the epoch in its own
  transaction, and a flag waits for a chunk's row lock), so it is judged from them, no event read;
* flagged with the epoch (an event arrived, or the catalogue or the calendar changed): only its
  event rows dated after the mark are read, those up to it counted; when they are as many as
  were folded, none is new (rows are never deleted or changed, one per identity), the newer ones
  are all the new events and sort after every folded one: the stored facts are extended by them
  (:func:`~services.scoring.domain.dossier.extend_facts`, the fold's own loop). Otherwise (an
  event dated at or before the mark arrived) every event is read and folded, as are dossiers
  with no stored facts, facts of another fold version or without a mark (stored by older code:
  it rewrites the document without one, so a rollback and a mixed rollout stay exact).

Folding here, not in the consumer, is what makes a back-fill cheap: a dossier whose five events
arrive in five batches is folded once per refresh, not once per batch, and its facts are
encoded and written once. It stays exact under concurrency: a consumer that stores a new event
of a claimed dossier waits for the chunk's row lock and then flags it again (judged next tick);
one that flagged it first holds the row, so the claim skips it until that event is committed.

A dossier that cannot be judged (facts the domain cannot evaluate, e.g. a due time in year 1
that overflows the calendar) is set aside, never allowed to fail the chunk: its contributions
are removed, the reason is stored in ``dossier.unjudgeable`` (hồ sơ không chấm được), it is
logged and counted in ``sqi_dossiers_unjudgeable_total``; the next event that changes its
facts clears the mark and it is judged again. The recompute path skips it the same way.
Contributions of periods before the history floor (:mod:`services.scoring.domain.period_labels`) are
left as they are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.codec import FOLD_VERSION, FoldMark, facts_from_json, facts_json
from services.scoring.adapters.dirty_periods import mark_periods
from services.scoring.adapters.repository import PETITIONS_NAMING, RATINGS_OF, feedback_of_rows
from services.scoring.adapters.tables import EPOCH
from services.scoring.adapters.tallies import apply_deltas
from services.scoring.domain import (
    NO_FEEDBACK,
    DomainEvent,
    DossierFacts,
    DossierFeedback,
    Procedure,
    extend_facts,
    fold_dossier,
)
from services.scoring.domain.contributions import Contribution, contributions, period_of
from services.scoring.domain.period_labels import history_floor
from shared.calendar import WorkingCalendar
from shared.db import driver_connection as driver
from shared.metrics import DOSSIERS_UNJUDGEABLE

log = logging.getLogger(__name__)

CHUNK = 1000  # ~0.25 s of judging: row locks a consumer may wait for are held briefly; bigger
# chunks fold more dossiers into each counter row

# Every statement of a chunk finds its rows by key, through an index. The planner decides that
# from the tables' statistics (autovacuum's ANALYZE, or shared.table_upkeep where it is
# off), and without them — a bulk load not analysed yet — ``dossier_id = ANY($1)`` looks like it
# matches every row: a scan of the whole event table per chunk, growing with the history (scale 1:
# ≈ 185 ms a chunk instead of ≈ 9). Judging never needs one, so its transaction says so, and does
# not let such estimates make PostgreSQL compile its statements (JIT: ≈ 70 ms a chunk).
_KEYED_ONLY = "SET LOCAL enable_seqscan = off; SET LOCAL jit = off"
# Due first; among those due at one instant (every changed dossier carries the epoch) by unit,
# then id (a first judging has no unit yet; ids of one office tend to share a prefix): a chunk's
# verdicts then fall into ~5× fewer counter rows, the counter upserts' cost. Served by
# ix_dossier_recheck_at. Not a dossier whose events ingest accepted at or after $3, the wall
# clock when the refresher's tick began: under a live stream its new facts are in the future of
# the tick's judging instant (judged, they would only set a recheck at their own time — a second
# judging next tick, ≈ a third of all judging); it is judged once, at the next tick. (Ingest's
# clock ahead of scoring's by δ delays such a dossier by δ at most.)
# With each dossier its stored facts and their mark, when they are of this fold's version ($4).
_CLAIM = """
SELECT dossier_id, recheck_at, accepted_at, traceparent,
    CASE WHEN facts->>'fold_version' = $4 THEN facts::text END,
    CASE WHEN facts->>'fold_version' = $4 THEN (facts->>'folded_through')::timestamptz END,
    CASE WHEN facts->>'fold_version' = $4 THEN (facts->>'folded_events')::int END
FROM scoring.dossier
WHERE recheck_at < $1 AND (accepted_at IS NULL OR accepted_at < $3)
ORDER BY recheck_at, unit_code, dossier_id LIMIT $2 FOR UPDATE SKIP LOCKED
"""
# The event rows of the dossiers $1 with their data when dated after $2 (its facts' mark; every
# row when null): a stored fold is extended by the newer rows, the older ones are only counted.
_EVENTS = """
SELECT dossier_id, source, event_id, type, occurred_at, data::text
FROM scoring.dossier_event WHERE dossier_id = ANY($1::text[])
"""
# The event rows of the dossiers $1 dated after $2 (its stored facts' mark), with how many of
# its rows are dated up to the mark (counted, not sent): the stored facts are extended by the
# newer rows. A dossier with no newer row comes as one row of nulls with its count.
_NEWER_EVENTS = """
SELECT k.d, e.source, e.event_id, e.type, e.occurred_at, e.data::text, o.n
FROM unnest($1::text[], $2::timestamptz[]) AS k(d, w)
CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM scoring.dossier_event x WHERE x.dossier_id = k.d AND x.occurred_at <= k.w
) o
LEFT JOIN scoring.dossier_event e ON e.dossier_id = k.d AND e.occurred_at > k.w
"""
# The folded facts of the dossiers whose events changed (flagged with the epoch), with the verdict.
_STORE = """
UPDATE scoring.dossier d SET recheck_at = k.rc, accepted_at = NULL, traceparent = NULL,
    unit_code = k.u, procedure_code = k.p, received_at = k.r, finished_at = k.f, facts = k.x::jsonb
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[])
    AS k(i, rc, u, p, r, f, x)
WHERE d.dossier_id = k.i
"""
_OLD = """
SELECT dossier_id, period, unit_code, procedure_code, flags, handling_days
FROM scoring.contribution WHERE dossier_id = ANY($1::text[])
"""
_DELETE = """
DELETE FROM scoring.contribution c USING unnest($1::text[], $2::text[]) AS k(d, p)
WHERE c.dossier_id = k.d AND c.period = k.p
"""
# A row whose verdict changed is rewritten in place: no index changes unless its unit does (a
# HOT update, the old version pruned on the page), where a delete and a COPY inserted into the
# table's three indexes and left a dead row behind — ≈ 45 % less time for a live chunk's rows.
_REPLACE = """
UPDATE scoring.contribution c SET unit_code = k.u, procedure_code = k.pc, flags = k.f, handling_days = k.h
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[]) AS k(d, p, u, pc, f, h)
WHERE c.period = k.p AND c.dossier_id = k.d
"""  # the columns in Contribution's order
_RECHECK = """
UPDATE scoring.dossier d SET recheck_at = k.r, accepted_at = NULL, traceparent = NULL
FROM unnest($1::text[], $2::timestamptz[]) AS k(i, r) WHERE d.dossier_id = k.i
"""
# Its stored facts may be older than its events (those folded with them could not be judged): the
# mark goes, so nothing judges it from them (a flag that is not the epoch — feedback — skips a
# dossier set aside, but need not: it is folded from every event).
_SET_ASIDE = """
UPDATE scoring.dossier d SET recheck_at = NULL, unjudgeable = k.r, accepted_at = NULL, traceparent = NULL,
    facts = d.facts - 'fold_version'
FROM unnest($1::text[], $2::text[]) AS k(i, r) WHERE d.dossier_id = k.i
"""
END_OF_TIME = datetime.max.replace(tzinfo=UTC)  # no bound on acceptance (tests, direct recomputation)
COLUMNS = ("period", "dossier_id", "unit_code", "procedure_code", "flags", "handling_days")


@dataclass
class Judged:
    """A chunk's outcome: contributions and recheck instants of the judged dossiers, and the
    dossiers set aside with the reason."""

    contributions: list[Contribution] = field(default_factory=list)
    rechecks: dict[str, datetime | None] = field(default_factory=dict)
    unjudgeable: dict[str, str] = field(default_factory=dict)
    # Dossier → its folded columns (unit, procedure, received, finished, facts JSON) to store.
    facts: dict[str, tuple[str, str, datetime, datetime | None, str]] = field(default_factory=dict)


@dataclass(slots=True)
class Stored:
    """A claimed dossier's stored facts (the JSON text) and their mark, of this fold's version."""

    facts: str
    mark: FoldMark


@dataclass
class Changes:
    """What a chunk's new contributions change in the stored ones."""

    removed: list[Contribution]  # stored rows replaced or gone (deleted; counted out)
    added: list[Contribution]  # new or changed rows (written; counted in)
    periods: list[str]  # where a row appeared, vanished or changed: to re-aggregate


def compare(old: Iterable[Contribution], new: Iterable[Contribution]) -> Changes:
    """The rows to delete and to write so the stored rows become ``new`` (unchanged rows are
    left alone: no write, no counter move, no dirty period)."""
    stored = {(c.dossier_id, c.period): c for c in old}
    fresh = {(c.dossier_id, c.period): c for c in new}
    removed = [o for k, o in stored.items() if fresh.get(k) != o]
    added = [c for k, c in fresh.items() if stored.get(k) != c]
    return Changes(removed, added, sorted({c.period for c in removed} | {c.period for c in added}))


def in_window(label: str, floor: datetime) -> bool:
    """Whether a stored period label starts at or after the history floor (a label no longer
    accepted, e.g. ``1990-01`` stored before the bounds existed, is history: left alone)."""
    try:
        return period_of(label).start >= floor
    except ValueError:
        return False


def judge_rows(
    events: Mapping[str, Iterable[DomainEvent]],
    procedures: Mapping[str, Procedure],
    now: datetime,
    calendar: WorkingCalendar,
    feedback: Mapping[str, DossierFeedback] | None = None,
    *,
    stored: Mapping[str, Stored] | None = None,
    marks: Mapping[str, FoldMark] | None = None,
) -> Judged:
    """CPU only (runs in a thread): events → facts → contributions and recheck instants, per
    dossier isolated (one that fails is set aside, the others are judged). ``events``: every
    dossier to judge, with all its events — or, when it is in ``stored``, the events dated after
    its stored facts' mark (none: judged from the stored facts as they are). ``marks``: the
    dossiers whose facts must be stored, with what they were folded from; ``feedback``: their
    ratings and the petitions naming them, by dossier (none when missing)."""
    feedback = feedback or {}
    stored = stored or {}
    marks = marks or {}
    out = Judged()
    procs = dict(procedures)
    for dossier_id, evs in events.items():
        try:
            facts = _facts(dossier_id, evs, stored.get(dossier_id), procs)
            if facts is None:  # no receipt yet: counts nowhere until it arrives
                out.rechecks[dossier_id] = None
                continue
            cs, recheck = contributions(facts, now, calendar, feedback.get(dossier_id, NO_FEEDBACK))
            mark = marks.get(dossier_id)
            if mark is not None:
                out.facts[dossier_id] = (
                    facts.unit_code,
                    facts.procedure_code,
                    facts.received_at,
                    facts.finished_at,
                    facts_json(facts, mark),
                )
        except Exception as exc:  # a poison dossier must not stop the whole country's scores
            out.unjudgeable[dossier_id] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        out.contributions += cs
        out.rechecks[dossier_id] = recheck
    return out


def _facts(
    dossier_id: str, events: Iterable[DomainEvent], stored: Stored | None, procedures: dict[str, Procedure]
) -> DossierFacts | None:
    """Every event folded, or the stored facts (their procedure from today's catalogue, as the
    fold attaches it) extended by the newer events."""
    if stored is None:
        return fold_dossier(dossier_id, events, procedures)
    facts = facts_from_json(orjson.loads(stored.facts), procedures)
    return extend_facts(facts, events, stored.mark.through)


def _event(r: Sequence[Any]) -> DomainEvent:
    return DomainEvent(r[1], r[2], r[3], r[4], orjson.loads(r[5]))


@dataclass
class Plan:
    """How a chunk's dossiers are judged: from their stored facts (``stored``) — as they are, or
    extended by their rows dated after the mark (``newer``: the mark's instant) — or from every
    event row read (``full``)."""

    stored: dict[str, Stored]
    newer: dict[str, datetime]
    full: list[str]

    def fold_in_full(self, ids: Iterable[str]) -> None:
        for i in ids:
            del self.stored[i], self.newer[i]
            self.full.append(i)


def plan(claimed: Iterable[Sequence[Any]]) -> Plan:
    """From the claimed rows (``dossier_id, recheck_at, …, facts, folded_through, folded_events``
    as :data:`_CLAIM` returns them): the stored facts to use and the events to read."""
    out = Plan({}, {}, [])
    for r in claimed:
        dossier_id, recheck_at, doc, through, count = r[0], r[1], r[4], r[5], r[6]
        if doc is None or through is None or count is None:
            out.full.append(dossier_id)
            continue
        out.stored[dossier_id] = Stored(doc, FoldMark(through, count))
        if recheck_at <= EPOCH:  # its events may have changed (a rating dated before 1970 lowers the epoch)
            out.newer[dossier_id] = through
    return out


def unfolded(plan: Plan, newer_rows: Iterable[Sequence[Any]]) -> set[str]:
    """The dossiers whose stored facts cannot be extended by their newer rows (as
    :data:`_NEWER_EVENTS` returns them): their rows dated up to the mark are not the rows folded
    — an event dated at or before the mark arrived. They must be folded from every event."""
    older = {r[0]: r[6] for r in newer_rows}
    return {i for i in plan.newer if older.get(i) != plan.stored[i].mark.events}


def _judge_records(
    ids: list[str],
    event_rows: Iterable[Sequence[Any]],
    rating_rows: Iterable[Sequence[Any]],
    petition_rows: Iterable[Sequence[Any]],
    stored: Iterable[Sequence[Any]],
    folds: Mapping[str, Stored],
    procedures: Mapping[str, Procedure],
    now: datetime,
    calendar: WorkingCalendar,
) -> tuple[Judged, Changes]:
    """A chunk's CPU work, off the event loop (a worker thread): decode the events read and the
    feedback, :func:`judge_rows`, :func:`compare` with the stored contributions of the history
    window. ``event_rows``: every row of the dossiers not in ``folds`` (their stored facts, as
    :data:`_EVENTS` returns them), the rows after the mark of those in it (:data:`_NEWER_EVENTS`,
    checked by :func:`unfolded` before)."""
    rows: dict[str, list[Sequence[Any]]] = {i: [] for i in ids}
    for r in event_rows:
        if r[1] is not None:  # not the nulls of a dossier with no newer row
            rows[r[0]].append(r)
    # Facts folded from event rows are stored with the mark of all its rows (a dossier with none
    # read is judged from its stored facts as they are and stores nothing).
    marks: dict[str, FoldMark] = {}
    for i, rs in rows.items():
        if rs:
            through, count = max([r[4] for r in rs]), len(rs)
            if i in folds:
                mark = folds[i].mark
                through, count = max(through, mark.through), count + mark.events
            marks[i] = FoldMark(through, count)
    # Each dossier's events are decoded as it is folded, and dropped with it: a chunk never holds
    # ~6,000 events at once for the collector to walk (≈ 10 % of judging's CPU otherwise).
    events = {i: map(_event, rs) for i, rs in rows.items()}
    feedback = feedback_of_rows(rating_rows, petition_rows)
    judged = judge_rows(events, procedures, now, calendar, feedback, stored=folds, marks=marks)
    floor = history_floor(now)
    window = {label for label in {r[1] for r in stored} if in_window(label, floor)}  # older periods: left as they are
    old = [Contribution._make(r) for r in stored if r[1] in window]
    return judged, compare(old, judged.contributions)


async def write_contributions(conn: Any, changes: Changes) -> None:
    """Make the stored rows what the chunk judged: rows gone deleted, rows changed rewritten in
    place, new rows copied in; the counters move by the same difference."""
    replaced_keys = {(c.dossier_id, c.period) for c in changes.removed} & {
        (c.dossier_id, c.period) for c in changes.added
    }
    gone = [c for c in changes.removed if (c.dossier_id, c.period) not in replaced_keys]
    if gone:
        await conn.execute(_DELETE, [c.dossier_id for c in gone], [c.period for c in gone])
    await apply_deltas(conn, changes.removed, changes.added)
    replaced = [c for c in changes.added if (c.dossier_id, c.period) in replaced_keys]
    if replaced:
        await conn.execute(_REPLACE, *map(list, zip(*replaced, strict=True)))
    new = [c for c in changes.added if (c.dossier_id, c.period) not in replaced_keys]
    if new:
        await conn.copy_records_to_table(
            "contribution",
            schema_name="scoring",
            columns=COLUMNS,
            records=[(c.period, c.dossier_id, c.unit_code, c.procedure_code, c.flags, c.handling_days) for c in new],
        )


async def judge_chunk(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
    limit: int = CHUNK,
    accepted_before: datetime = END_OF_TIME,
) -> int:
    """Judge up to ``limit`` due dossiers (those whose pending events ingest accepted before
    ``accepted_before``: the refresher's tick start); returns how many were claimed (0: none left)."""
    conn: Any = await driver(session)
    await conn.execute(_KEYED_ONLY)
    rows = await conn.fetch(_CLAIM, now, limit, accepted_before, str(FOLD_VERSION))
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    accepted = sorted({r[2] for r in rows if r[2] is not None})
    traces = sorted({r[3] for r in rows if r[3]})
    how = plan(rows)
    event_rows: list[Any] = []
    if how.newer:
        event_rows = await conn.fetch(_NEWER_EVENTS, list(how.newer), list(how.newer.values()))
        refold = unfolded(how, event_rows)
        if refold:  # an event dated up to the mark arrived: fold every event of these dossiers
            event_rows = [r for r in event_rows if r[0] not in refold]
            how.fold_in_full(refold)
    if how.full:
        event_rows += await conn.fetch(_EVENTS, how.full)
    rating_rows = await conn.fetch(RATINGS_OF, ids)
    petition_rows = await conn.fetch(PETITIONS_NAMING, ids)
    stored = await conn.fetch(_OLD, ids)
    judged, changes = await asyncio.to_thread(
        _judge_records, ids, event_rows, rating_rows, petition_rows, stored, how.stored, procedures, now, calendar
    )
    await write_contributions(conn, changes)
    if judged.facts:
        folded = sorted(judged.facts)
        await conn.execute(
            _STORE,
            folded,
            [judged.rechecks[i] for i in folded],
            *([judged.facts[i][k] for i in folded] for k in range(5)),
        )
    rechecks = {i: r for i, r in judged.rechecks.items() if i not in judged.facts}
    if rechecks:
        await conn.execute(_RECHECK, list(rechecks), list(rechecks.values()))
    if judged.unjudgeable:
        await conn.execute(_SET_ASIDE, list(judged.unjudgeable), list(judged.unjudgeable.values()))
        for dossier_id, reason in judged.unjudgeable.items():
            log.warning("dossier set aside: cannot be judged", extra={"dossier_id": dossier_id, "reason": reason})
            DOSSIERS_UNJUDGEABLE.labels(reason=reason.split(":", 1)[0]).inc()
    if changes.periods:
        await mark_periods(session, changes.periods, accepted, traces)
    return len(rows)


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
