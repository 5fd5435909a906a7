"""Judging flagged dossiers into contributions, in bounded chunks, off the event loop.

A dossier is due for judging when it is flagged (``scoring.dossier_flag``: the consumer stored a
new event of it; feedback about it found its row held or missing) or when ``recheck_at < now``:
:data:`REJUDGE` for a changed procedure or calendar, at most the rating's or petition's own
instant when a rating of it, or a petition naming it, arrives (its facts did not change: nothing
to store), and the next instant time alone changes a verdict, which
:mod:`services.scoring.domain.contributions` sets.
Strictly before: a verdict judged at a threshold ``t`` is still exact at ``t`` (a fact at ``t`` is
known only after ``t``, a due time ``t`` is passed only after ``t``), and ``<=`` would re-judge it
forever within one tick.

Each chunk: claim rows ``FOR UPDATE SKIP LOCKED`` (a catalogue change's or a declared day's
mark waits for a chunk's rows, feedback flags a held row instead, a chunk never waits for a row
lock: no deadlock), read every
stored event of the claimed dossiers to fold, their ratings and the petitions naming them (5.4)
and their stored contributions, then decode, fold, judge and compare them in a worker thread
(the event loop keeps consuming: it only sends and receives the statements), store the facts of
the dossiers folded, write only the contributions that changed, mark their periods dirty — all
in the caller's transaction, with the difference applied to the per-unit counters
(:mod:`services.scoring.adapters.tallies`).

A dossier due with its events unchanged — ``recheck_at`` after the epoch: time alone or feedback
changes its verdicts, or the catalogue or the calendar changed (:data:`REJUDGE`) — is judged
from its stored facts when they are of this code's fold (``codec.FOLD_VERSION``): no event read
or folded, nothing stored but its recheck instant. Exact: a stored event has a flag until a
chunk takes the flag and folds the dossier with every event it reads, in one transaction; a flag
not taken yet (its event accepted after the step began, or raised while the dossier was judged)
is taken at a later chunk or step, and the dossier folded with that event then — meanwhile its
verdicts are those of its facts without that event, as of the judging instant. Not a dossier set
aside (its stored facts may be older than its events; judging its next event's flag clears the
mark). Its procedure is attached from today's catalogue, as the fold does.

Folding here, not in the consumer, is what makes a back-fill cheap: a dossier whose five events
arrive in five batches is folded once per refresh, not once per batch, and its facts are
encoded and written once. It stays exact under concurrency without the consumer ever waiting
for a chunk: the consumer flags a dossier with a new event in ``scoring.dossier_flag``
(:mod:`services.scoring.adapters.dossier_flags`), never on the dossier row a chunk holds, and a
flag raised while the dossier was being judged stays raised, so it is judged again next tick
(with every event it has by then). A judging step takes the flags of events accepted before it
began (:func:`judge_flagged_chunk`), then the dossiers due by time (:func:`judge_chunk`).

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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.calendar_store import build_calendar, declared_days, rejudge_everything
from services.scoring.adapters.codec import FOLD_VERSION, facts_from_json, facts_json
from services.scoring.adapters.dirty_periods import mark_periods
from services.scoring.adapters.dossier_flags import take_flags
from services.scoring.adapters.judging_steps import JudgingStep, Opened, open_step
from services.scoring.adapters.repository import PETITIONS_NAMING, RATINGS_OF, feedback_of_rows, load_procedures
from services.scoring.adapters.tables import EPOCH, KEYED_ONLY
from services.scoring.adapters.tallies import apply_deltas
from services.scoring.domain import NO_FEEDBACK, DomainEvent, DossierFacts, DossierFeedback, Procedure, fold_dossier
from services.scoring.domain.contributions import Contribution, contributions, period_of
from services.scoring.domain.period_labels import history_floor
from shared.calendar import WorkingCalendar
from shared.db import driver_connection as driver
from shared.metrics import DOSSIERS_UNJUDGEABLE

log = logging.getLogger(__name__)

CHUNK = 1000  # ~0.25 s of judging: row locks a consumer may wait for are held briefly; bigger
# chunks fold more dossiers into each counter row

# Due first; among those due at one instant (every changed dossier carries the epoch) by unit,
# then id (a first judging has no unit yet; ids of one office tend to share a prefix): a chunk's
# verdicts then fall into ~5× fewer counter rows, the counter upserts' cost. Served by
# ix_dossier_recheck_at. With a dossier whose events did not change (after the epoch, $3) and not
# set aside its stored facts, when they are of this fold's version ($4). (Changed dossiers are the
# flagged chunk's: ``adapters.dossier_flags``, which also leaves those accepted after the tick began.)
# ``_CLAIM_FROM_END`` is the same order backwards (the same index, read from its other end): the
# refresher's second judging lane, so that two lanes meet once, in the middle, instead of taking
# consecutive chunks that share the unit at their boundary — whose counter rows the second would
# wait on until the first commits (docs/performance.md, session 10).
_CLAIM = """
SELECT dossier_id,
    CASE WHEN recheck_at > $3 AND unjudgeable IS NULL AND facts->>'fold_version' = $4 THEN facts::text END
FROM scoring.dossier
WHERE recheck_at < $1
ORDER BY {order} LIMIT $2 FOR UPDATE SKIP LOCKED
"""
_CLAIM_FROM_START = _CLAIM.format(order="recheck_at, unit_code, dossier_id")
_CLAIM_FROM_END = _CLAIM.format(order="recheck_at DESC, unit_code DESC, dossier_id DESC")
_EVENTS = """
SELECT dossier_id, source, event_id, type, occurred_at, data::text
FROM scoring.dossier_event WHERE dossier_id = ANY($1::text[])
"""
# The folded facts of the dossiers whose events changed (flagged with the epoch), with the verdict.
_STORE = """
UPDATE scoring.dossier d SET recheck_at = k.rc, unjudgeable = NULL,
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
UPDATE scoring.dossier d SET recheck_at = k.r, unjudgeable = NULL
FROM unnest($1::text[], $2::timestamptz[]) AS k(i, r) WHERE d.dossier_id = k.i
"""
_SET_ASIDE = """
UPDATE scoring.dossier d SET recheck_at = NULL, unjudgeable = k.r
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
    stored: Mapping[str, str] | None = None,
) -> Judged:
    """CPU only (runs in a thread): events → facts → contributions and recheck instants, per
    dossier isolated (one that fails is set aside, the others are judged). ``events``: the
    dossiers to fold, with all their events; their facts are stored. ``stored``: the dossiers
    judged from their stored facts (the JSON text) instead. ``feedback``: their ratings and the
    petitions naming them, by dossier (none when missing)."""
    feedback = feedback or {}
    stored = stored or {}
    out = Judged()
    procs = dict(procedures)
    for dossier_id in {**events, **stored}:
        try:
            facts: DossierFacts | None
            if dossier_id in stored:
                facts = facts_from_json(orjson.loads(stored[dossier_id]), procs)
            else:
                facts = fold_dossier(dossier_id, events[dossier_id], procs)
            if facts is None:  # no receipt yet: counts nowhere until it arrives
                out.rechecks[dossier_id] = None
                continue
            cs, recheck = contributions(facts, now, calendar, feedback.get(dossier_id, NO_FEEDBACK))
            if dossier_id not in stored:
                out.facts[dossier_id] = (
                    facts.unit_code,
                    facts.procedure_code,
                    facts.received_at,
                    facts.finished_at,
                    facts_json(facts),
                )
        except Exception as exc:  # a poison dossier must not stop the whole country's scores
            out.unjudgeable[dossier_id] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        out.contributions += cs
        out.rechecks[dossier_id] = recheck
    return out


def _event(r: Sequence[Any]) -> DomainEvent:
    return DomainEvent(r[1], r[2], r[3], r[4], orjson.loads(r[5]))


def _judge_records(
    ids: list[str],
    event_rows: Iterable[Sequence[Any]],
    rating_rows: Iterable[Sequence[Any]],
    petition_rows: Iterable[Sequence[Any]],
    stored: Iterable[Sequence[Any]],
    facts: Mapping[str, str],
    procedures: Mapping[str, Procedure],
    now: datetime,
    calendar: WorkingCalendar,
) -> tuple[Judged, Changes]:
    """A chunk's CPU work, off the event loop (a worker thread): decode the events read (of the
    dossiers not in ``facts``, their stored facts) and the feedback, :func:`judge_rows`,
    :func:`compare` with the stored contributions of the history window."""
    rows: dict[str, list[Sequence[Any]]] = {i: [] for i in ids if i not in facts}
    for r in event_rows:
        rows[r[0]].append(r)
    # Each dossier's events are decoded as it is folded, and dropped with it: a chunk never holds
    # ~6,000 events at once for the collector to walk (≈ 10 % of judging's CPU otherwise).
    events = {i: map(_event, rs) for i, rs in rows.items()}
    feedback = feedback_of_rows(rating_rows, petition_rows)
    judged = judge_rows(events, procedures, now, calendar, feedback, stored=facts)
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


async def judge_flagged_chunk(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
    limit: int = CHUNK,
    accepted_before: datetime = END_OF_TIME,
    from_end: bool = False,
) -> int:
    """Take the consumer's flags, of events accepted before ``accepted_before`` (the refresher's
    tick start), of up to ``limit`` dossiers and judge those, every event folded; returns how many
    (0: none left). ``from_end``: the last dossiers in id order first (a second lane)."""
    conn: Any = await driver(session)
    await conn.execute(KEYED_ONLY)
    flags = await take_flags(conn, accepted_before=accepted_before, limit=limit, from_end=from_end)
    if not flags:
        return 0
    ids = sorted({f[0] for f in flags})  # a dossier may have several (one a batch); rows locked
    accepted = sorted({f[1] for f in flags if f[1] is not None})
    traces = sorted({f[2] for f in flags if f[2]})
    await _judge_claimed(session, conn, ids, {}, accepted, traces, now=now, calendar=calendar, procedures=procedures)
    return len(ids)


async def judge_chunk(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
    limit: int = CHUNK,
    from_end: bool = False,
) -> int:
    """Judge up to ``limit`` dossiers due by ``now`` (time alone, feedback, a catalogue or calendar
    change: ``recheck_at``); returns how many were claimed (0: none left). ``from_end``: the last
    due in the claim order first (a second lane)."""
    conn: Any = await driver(session)
    await conn.execute(KEYED_ONLY)
    claim = _CLAIM_FROM_END if from_end else _CLAIM_FROM_START
    rows = await conn.fetch(claim, now, limit, EPOCH, str(FOLD_VERSION))
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    facts = {r[0]: r[1] for r in rows if r[1] is not None}  # judged from them, no event read
    await _judge_claimed(session, conn, ids, facts, [], [], now=now, calendar=calendar, procedures=procedures)
    return len(rows)


async def _judge_claimed(
    session: AsyncSession,
    conn: Any,
    ids: list[str],
    facts: Mapping[str, str],
    accepted: list[datetime],
    traces: list[str],
    *,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
) -> None:
    """Judge the claimed (locked) dossiers ``ids``: from their stored ``facts`` (JSON text) where
    given, else from all their events; write what changed and mark its periods."""
    to_fold = [i for i in ids if i not in facts]
    event_rows = await conn.fetch(_EVENTS, to_fold) if to_fold else []
    rating_rows = await conn.fetch(RATINGS_OF, ids)
    petition_rows = await conn.fetch(PETITIONS_NAMING, ids)
    stored = await conn.fetch(_OLD, ids)
    judged, changes = await asyncio.to_thread(
        _judge_records, ids, event_rows, rating_rows, petition_rows, stored, facts, procedures, now, calendar
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


async def judge_due(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    procedures: Mapping[str, Procedure],
) -> int:
    """Judge every flagged and every due dossier inside the caller's transaction, with the
    caller's copies. It opens no judging step: a catalogue or calendar change committed after
    those copies were read would be judged with them and stay so. Only for a caller no such
    change can race (a test's oracle, judging between its own steps); anything else judges
    through :func:`judge_due_in_step`."""
    total = 0
    for chunk in (judge_flagged_chunk, judge_chunk):
        while n := await chunk(session, now=now, calendar=calendar, procedures=procedures):
            total += n
    return total


# The lease of a step opened in the transaction that judges (:func:`judge_due_in_step`): none. Its
# row becomes visible only when that transaction commits, with everything the step judged, so
# any worker's next step may reconcile it at once; and no one remembers it as their previous step.
IN_TRANSACTION_LEASE_S = 0.0


async def judge_due_in_step(session: AsyncSession, *, now: datetime) -> tuple[dict[str, Procedure], WorkingCalendar]:
    """:func:`judge_due` in a judging step opened in the caller's transaction, with the step's
    copies (read after its snapshot: the calendar from the declared days, not the caller's copy,
    which may be older); returns them, for the caller to score with what it judged with.

    A catalogue or calendar change committed while it judges may still be judged with those
    copies; the step's row, committed with the contributions, has the next step of any worker (or
    the next call of this) judge it again, as a refresher step's does
    (:mod:`services.scoring.adapters.judging_steps`). The opening's commit stays synchronous: the
    transaction is the caller's."""
    _, procedures, calendar = await open_step_with_copies(
        session,
        previous=None,
        lease_s=IN_TRANSACTION_LEASE_S,
        read_calendar=_declared_calendar,
        asynchronous_commit=False,
    )
    await judge_due(session, now=now, calendar=calendar, procedures=procedures)
    return procedures, calendar


async def _declared_calendar(session: AsyncSession) -> WorkingCalendar:
    return build_calendar(await declared_days(session))


async def open_step_with_copies(
    session: AsyncSession,
    *,
    previous: JudgingStep | None,
    lease_s: float,
    read_calendar: Callable[[AsyncSession], Awaitable[WorkingCalendar]],
    asynchronous_commit: bool = True,
) -> tuple[JudgingStep, dict[str, Procedure], WorkingCalendar]:
    """Open a judging step in ``session``'s transaction (``adapters.judging_steps.open_step``:
    the dossiers of the procedures written unseen by ``previous`` and by the rows whose lease
    expired made due again — every dossier and every scored period when the declared days were)
    and read, after its snapshot, the calendar (``read_calendar``) and the catalogue its chunks
    judge with. The one opening of the refresher's steps
    (:func:`~services.scoring.application.refresher.open_judging_step`, a transaction of its own,
    committed before judging) and of :func:`judge_due_in_step` (the judging's transaction)."""
    opened = await open_step(
        await driver(session), previous=previous, lease_s=lease_s, asynchronous_commit=asynchronous_commit
    )
    if opened.calendar_moved:  # committed with the release, as the procedures' re-judging
        await rejudge_everything(session)
    calendar = await read_calendar(session)
    procedures = await load_procedures(session)
    _log_opened(opened)
    return opened.step, procedures, calendar


def _log_opened(opened: Opened) -> None:
    if opened.taken_over:
        log.info("judging steps of gone workers or computations taken over", extra={"steps": len(opened.taken_over)})
    if opened.moved:
        log.info(
            "procedure catalogue changed since a step's copy; re-judging its dossiers",
            extra={"procedures": len(opened.moved), "dossiers": opened.rejudged},
        )
    if opened.calendar_moved:
        log.info("working calendar changed since a step's copy; re-judging every dossier")
