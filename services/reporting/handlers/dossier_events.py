"""Ingest's dossier events into reporting's read model: open dossiers, due times, officers, and
feed activity per source — a few statements per transaction, whatever the number of messages
(``on_dossier_batches``: the consumer hands over every new message of a transaction at once).

A back-fill brings ≈ 1 M events a month and every consumer of them shares two cores with
scoring, so this path is written for cost per event (docs/performance.md): the body is read with
orjson (``domain.dossier_batch``), the driver's connection sends ``unnest`` statements (nothing
compiled per row count), and a dossier whose state and remembered events did not change is not
written at all (its history is not encoded again either).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import Any

import orjson

from services.reporting.adapters.calendar import working_calendar
from services.reporting.adapters.changes import mark_changed
from services.reporting.domain.dossier_batch import read_batch
from services.reporting.domain.dossiers import (
    OFFICER_ONLY,
    DossierEvent,
    DossierState,
    apply,
    folded_through,
    folds_on,
    from_json,
    refold,
    remember,
    to_json,
)
from shared.calendar import WorkingCalendar
from shared.db import driver_connection
from shared.messaging.topology import IncomingMessage, one_message
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
STATE_COLUMNS = tuple(f for f in DossierState.__dataclass_fields__ if f != "dossier_id")
_state_values = attrgetter(*STATE_COLUMNS)  # one C call per dossier, not a generator

# The subscription's queue: the consumer's name in the inbox, whose purge horizon the feed counts read.
DOSSIER_QUEUE = "reporting.dossiers"
# Shared by dossier batches, exclusive for a calendar change (adapters.calendar.hold_calendar).
_HOLD_CALENDAR = "SELECT pg_advisory_xact_lock_shared(hashtext('reporting.calendar'))"
# Read after the lock (a statement's snapshot is taken when it starts), and after the consumer's
# inbox insert: a purge that let one of these messages in again has committed its horizon.
_DECLARED_DAYS = (
    "SELECT (SELECT days::text FROM reporting.calendar),"
    " (SELECT through FROM reporting.inbox_horizon WHERE consumer = $1)"
)
# ``accepted_at`` is ingest's clock, the inbox's ``received_at`` the database's: a message counts
# only when accepted this long after the horizon, so that a clock an hour off double-counts nothing.
CLOCK_MARGIN = timedelta(hours=1)
# Two batches touching the same dossier take turns (locks in one order: no deadlock); so do a
# batch and the retention sweep dropping the dossier (worker.sweep_chunk takes them too).
LOCK_DOSSIERS = (
    "SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT hashtext(d) AS h FROM unnest($1::text[]) d ORDER BY 1) s"
)
# Phase 1 reads no history: a dossier whose new events all come after its remembered ones is
# folded on its stored state (domain.dossiers.folds_on); only the others read their history.
_LOAD_DOSSIERS = (
    f"SELECT dossier_id, {', '.join(STATE_COLUMNS)}, folded_through, history IS NULL AS legacy"
    " FROM reporting.dossier WHERE dossier_id = ANY($1::text[])"
)
_LOAD_HISTORIES = "SELECT dossier_id, history::text FROM reporting.dossier WHERE dossier_id = ANY($1::text[])"
# Of the ids a batch has no row of: those the sweep dropped, and the horizon of the forgotten ones.
_DROPPED = (
    "SELECT ARRAY(SELECT dossier_id FROM reporting.dropped_dossier WHERE dossier_id = ANY($1::text[])),"
    " (SELECT through FROM reporting.dropped_horizon)"
)
_TIME_LIMITS = "SELECT procedure_code, time_limit_wd FROM reporting.procedure WHERE procedure_code = ANY($1::text[])"
_TYPES = {
    "unit_code": "text",
    "unit_at": "timestamptz",
    "officer_id": "text",
    "officer_at": "timestamptz",
    "procedure_code": "text",
    "received_at": "timestamptz",
    "due_at": "timestamptz",
    "due_explicit": "boolean",
    "paused_at": "timestamptz",
    "supplement_reason": "text",
    "finished_at": "timestamptz",
    "finish_kind": "text",
}
assert set(_TYPES) == set(STATE_COLUMNS)  # a new state field needs its type here
_COLUMNS = ("dossier_id", *STATE_COLUMNS, "folded_through", "history")
_STATE_ARRAYS = ", ".join(f"${i}::{_TYPES[c]}[]" for i, c in enumerate(STATE_COLUMNS, 2))
_N = len(STATE_COLUMNS)
# Rows sorted by dossier id (as the locks): one statement per batch whatever its size.
_STORE_DOSSIERS = (
    f"INSERT INTO reporting.dossier ({', '.join(_COLUMNS)})"
    f" SELECT {', '.join(c for c in _COLUMNS if c != 'history')}, history::jsonb"
    f" FROM unnest($1::text[], {_STATE_ARRAYS}, ${_N + 2}::timestamptz[], ${_N + 3}::text[])"
    f" AS t({', '.join(_COLUMNS)})"
    " ON CONFLICT (dossier_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    + ", updated_at = now()"
)
# Folded on: the new remembered events go after the stored ones, the officer-only event (always
# last, see remember) stays last — the history is the one a refold would have remembered.
_APPEND_DOSSIERS = (
    "UPDATE reporting.dossier AS d SET "
    + ", ".join(f"{c} = t.{c}" for c in (*STATE_COLUMNS, "folded_through"))
    + """, updated_at = now(), history = CASE WHEN d.history->-1->>'type' = 'officer'
        THEN (d.history - (-1)) || t.added::jsonb || coalesce(t.officer::jsonb, d.history->-1)
        ELSE d.history || t.added::jsonb || coalesce(t.officer::jsonb, '[]'::jsonb) END"""
    + f" FROM unnest($1::text[], {_STATE_ARRAYS}, ${_N + 2}::timestamptz[], ${_N + 3}::text[], ${_N + 4}::text[])"
    + f" AS t(dossier_id, {', '.join(STATE_COLUMNS)}, folded_through, added, officer)"
    + " WHERE d.dossier_id = t.dossier_id"
)
# Per (source, unit): last accepted batch, last event time, a running usual gap. Gaps under a
# second belong to one burst; the usual gap weighs new gaps by 1/5. The times and the gap are the
# same when a message comes again (a repeat is no later than what its first time left); the
# counts are added only for a message that cannot be a repeat (``counts_once``): $5 and $6 are 0
# for the others.
_GAP = "EXTRACT(EPOCH FROM excluded.last_accepted_at - f.last_accepted_at)"
_STORE_FEEDS = f"""
INSERT INTO reporting.feed AS f (source, unit_code, last_accepted_at, last_occurred_at, batches, events)
SELECT s, u, a, o, b, n
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::int[]) AS t(s, u, a, o, n, b)
ON CONFLICT (source, unit_code) DO UPDATE SET
    last_accepted_at = GREATEST(f.last_accepted_at, excluded.last_accepted_at),
    last_occurred_at = GREATEST(f.last_occurred_at, excluded.last_occurred_at),
    usual_gap_s = CASE WHEN {_GAP} < 1 THEN f.usual_gap_s
        WHEN f.usual_gap_s IS NULL THEN {_GAP}
        ELSE 0.8 * f.usual_gap_s + 0.2 * {_GAP} END,
    batches = f.batches + excluded.batches,
    events = f.events + excluded.events
"""


def _procedure_codes(events: Iterable[DossierEvent]) -> set[str]:
    return {e.data["procedure_code"] for e in events if isinstance(e.data.get("procedure_code"), str)}


async def _calendar(conn: Any) -> WorkingCalendar:
    """The working calendar with the declared days, read under the calendar lock (so a change
    is never half seen); one calendar object per declared set (it caches holiday years)."""
    return (await _calendar_and_horizon(conn))[0]


async def _calendar_and_horizon(conn: Any) -> tuple[WorkingCalendar, datetime | None]:
    """The calendar (:func:`_calendar`) and the dossier queue's inbox purge horizon, one round trip."""
    await conn.execute(_HOLD_CALENDAR)
    text, horizon = await conn.fetchrow(_DECLARED_DAYS, DOSSIER_QUEUE)
    days = orjson.loads(text) if text else []
    return working_calendar(frozenset((date.fromisoformat(d["day"]), str(d["kind"])) for d in days)), horizon


def counts_once(accepted_at: datetime | None, horizon: datetime | None) -> bool:
    """Whether a message's batch and events may be added to its feeds' counts (lượt gửi, số sự kiện).

    The consumer's inbox lets a message through once while its row is kept; the purge forgets rows
    older than a week, and a message re-driven from parking after that comes through again. Every
    earlier application of a message left a row received after ingest accepted it: accepted after
    the latest purged row (``horizon``, plus the clocks' margin), none of them can have been
    purged, so this is its first time. Accepted before, it may be a repeat: its times still count
    (a repeat changes none), its counts not — a message applied for the first time more than a week
    after its acceptance is left out of them rather than anyone's counted twice. Without
    ``accepted_at`` (not dated by ingest) it counts only while nothing was ever purged.
    """
    if horizon is None:
        return True
    if accepted_at is None:
        return False
    if accepted_at.tzinfo is None:  # as the driver stores it: UTC
        accepted_at = accepted_at.replace(tzinfo=UTC)
    return accepted_at > horizon + CLOCK_MARGIN


async def apply_dossier_events(
    events: Sequence[DossierEvent], *, conn: Any, calendar: WorkingCalendar
) -> dict[str, str | None]:
    """Fold a batch into the dossiers it touches; returns each dossier's unit afterwards.

    Any arrival order gives the same state: a dossier whose new events come after all it
    remembers is folded on its stored state (and its history appended to); any other has its
    remembered events plus the new ones refolded from scratch; a row stored before histories
    existed is folded on top. The events of a dossier the retention sweep dropped are ignored
    (:func:`_not_dropped`), and a new dossier with nothing to remember gets no row.
    """
    by_dossier: dict[str, list[DossierEvent]] = defaultdict(list)
    for e in events:
        by_dossier[e.dossier_id].append(e)
    ids = sorted(by_dossier)
    if not ids:
        return {}
    await conn.execute(LOCK_DOSSIERS, ids)
    stored = {r["dossier_id"]: r for r in await conn.fetch(_LOAD_DOSSIERS, ids)}
    ids = await _not_dropped(conn, ids, stored, by_dossier)
    states = {d: DossierState(d, *_stored_state(r)) for d, r in stored.items()}
    codes = _procedure_codes(events) | {s.procedure_code for s in states.values() if s.procedure_code}
    limits = await _time_limits(conn, codes)
    legacy = {d for d, r in stored.items() if r["legacy"]}
    onto = {
        d
        for d, r in stored.items()
        if d not in legacy and folds_on(states[d], r["folded_through"], by_dossier[d], time_limits=limits)
    }
    refolded = [d for d in ids if d not in onto and d not in legacy]
    known = [d for d in refolded if d in stored]
    before = {
        r[0]: from_json(r[0], orjson.loads(r[1])) for r in (await conn.fetch(_LOAD_HISTORIES, known) if known else ())
    }
    # Dropped between the two reads cannot be (the sweep takes the dossiers' locks); were it so,
    # taking it as new would recreate it from these events alone: it is left dropped.
    gone = set(known) - set(before)
    if gone:
        log.warning("dossiers dropped while their batch held them", extra={"dossiers": len(gone)})
        ids = [d for d in ids if d not in gone]
        refolded = [d for d in refolded if d not in gone]
    kept = {d: remember(before.get(d, ()), by_dossier[d]) for d in refolded}
    more = {c for h in kept.values() for c in _procedure_codes(h)} - codes
    limits |= await _time_limits(conn, more)
    units: dict[str, str | None] = {}
    rows: list[tuple[Any, ...]] = []
    appended: list[tuple[Any, ...]] = []
    for d in ids:
        row = stored.get(d)
        if d in onto:
            new = remember((), by_dossier[d])
            state = states[d]
            if new:  # else nothing the fold reads came: neither state nor history can change
                state = apply(state, new, time_limits=limits, calendar=calendar)
                through = folded_through(new)
                officer = new.pop() if new[-1].type == OFFICER_ONLY else None
                added, last = to_json(new), to_json([officer])[0] if officer else None
                appended.append(
                    (
                        d,
                        *_state_values(state),
                        through,
                        orjson.dumps(added).decode(),
                        last and orjson.dumps(last).decode(),
                    )
                )
        elif d in legacy:
            state = apply(states[d], by_dossier[d], time_limits=limits, calendar=calendar)
            if state != states[d]:
                rows.append((d, *_state_values(state), None, None))
        elif row is None and not kept[d]:
            continue  # nothing to remember (a sync, a payment): a row would hold nothing, for good
        else:
            state = refold(d, kept[d], time_limits=limits, calendar=calendar)
            # What did not change is neither encoded nor written again.
            if row is None or kept[d] != before[d] or state != states[d]:
                rows.append(
                    (d, *_state_values(state), folded_through(kept[d]), orjson.dumps(to_json(kept[d])).decode())
                )
        units[d] = state.unit_code
    if rows:
        await conn.execute(_STORE_DOSSIERS, *(list(col) for col in zip(*rows, strict=True)))
    if appended:
        await conn.execute(_APPEND_DOSSIERS, *(list(col) for col in zip(*appended, strict=True)))
    return units


async def _not_dropped(
    conn: Any, ids: list[str], stored: dict[str, Any], by_dossier: dict[str, list[DossierEvent]]
) -> list[str]:
    """``ids`` without the dossiers the retention sweep dropped (worker.drop_finished_dossiers):
    those with a tombstone, and those with neither row nor tombstone whose new events are all at
    or before the horizon of the purged tombstones. One statement, only when some id has no row
    (a stream's events mostly touch known dossiers); under the dossiers' locks, so a sweep is
    either committed and seen, or waits for this batch."""
    unknown = [d for d in ids if d not in stored]
    if not unknown:
        return ids
    tombstoned, horizon = await conn.fetchrow(_DROPPED, unknown)
    ignored = set(tombstoned)
    if horizon is not None:
        ignored |= {d for d in unknown if all(e.occurred_at <= horizon for e in by_dossier[d])}
    if not ignored:
        return ids
    events = sum(len(by_dossier[d]) for d in ignored)
    log.info("events of dropped dossiers ignored", extra={"dossiers": len(ignored), "events": events})
    return [d for d in ids if d not in ignored]


def _stored_state(r: Any) -> tuple[Any, ...]:
    return tuple(r)[1 : len(STATE_COLUMNS) + 1]  # (dossier_id, *state, …) as _LOAD_DOSSIERS reads it


async def _time_limits(conn: Any, codes: set[str]) -> dict[str, int | None]:
    return {r[0]: r[1] for r in await conn.fetch(_TIME_LIMITS, sorted(codes))} if codes else {}


FeedMessage = tuple[Sequence[tuple[str, DossierEvent]], datetime, bool]
"""A message's (source, event) pairs, its acceptance time, whether it counts (:func:`counts_once`)."""


async def record_feed_activity(messages: Sequence[FeedMessage], units: dict[str, str | None], *, conn: Any) -> None:
    """Per (source, unit): last accepted batch, last event time, a running usual gap, the counts.

    ``messages`` in delivery order. A feed row takes each message that brought it events, in that
    order, as if they came one a transaction: one statement per round, a round holding each
    (source, unit)'s next message (a burst from many dossier systems is one round). The events
    count for the dossier's unit after the whole batch; a message that may be a repeat adds its
    times, not its counts.
    """
    rounds: list[dict[tuple[str, str], tuple[int, datetime, datetime, int]]] = []
    seen: dict[tuple[str, str], int] = {}
    for raw, accepted_at, counted in messages:
        activity: dict[tuple[str, str], tuple[int, datetime]] = {}
        for source, e in raw:
            code = units.get(e.dossier_id)
            if code is None:
                continue
            count, latest = activity.get((source, code), (0, e.occurred_at))
            activity[(source, code)] = (count + 1, max(latest, e.occurred_at))
        for key, (count, latest) in activity.items():
            n = seen[key] = seen.get(key, -1) + 1
            if n == len(rounds):
                rounds.append({})
            rounds[n][key] = (count if counted else 0, latest, accepted_at, int(counted))
    for feeds in rounds:
        keys = sorted(feeds)  # rows in one order: two batches cannot deadlock on them
        await conn.execute(
            _STORE_FEEDS,
            [s for s, _ in keys],
            [u for _, u in keys],
            [feeds[k][2] for k in keys],
            [feeds[k][1] for k in keys],
            [feeds[k][0] for k in keys],
            [feeds[k][3] for k in keys],
        )


async def on_dossier_batches(messages: list[IncomingMessage], uow: UnitOfWork) -> None:
    """A transaction's messages of ``reporting.dossiers``: one fold of all their events (the state
    depends only on the set of events, :func:`apply_dossier_events`), then their feed activity."""
    now = datetime.now(UTC)
    batches = [read_batch(m.body) for m in messages]
    skipped = sum(b.skipped for b in batches)
    if skipped:
        log.warning("malformed dossier events skipped", extra={"skipped": skipped})
    if not any(b.events for b in batches):
        return
    conn = await driver_connection(uow.session)
    # Working days as the package and the law define them, with the days scoring's admins
    # declared (CalendarChanged).
    cal, horizon = await _calendar_and_horizon(conn)
    units = await apply_dossier_events([e for b in batches for _, e in b.events], conn=conn, calendar=cal)
    fed = [(m, b) for m, b in zip(messages, batches, strict=True) if b.events]
    counted = [counts_once(b.accepted_at, horizon) for _, b in fed]
    if not all(counted):
        _log_uncounted([m.message_id for (m, _), c in zip(fed, counted, strict=True) if not c], horizon)
    activity = [(b.events, b.accepted_at or now, c) for (_, b), c in zip(fed, counted, strict=True)]
    await record_feed_activity(activity, units, conn=conn)
    await mark_changed(uow.session, "warnings")  # last: the version row is locked only for the commit


def _log_uncounted(message_ids: list[str], horizon: datetime | None) -> None:
    """Name the messages left out of the feed counts: a person re-driving parking can tell why."""
    log.warning(
        "feed counts left out: messages accepted before the inbox purge horizon may be repeats",
        extra={
            "messages": len(message_ids),
            "message_ids": message_ids[:20],
            "horizon": horizon and horizon.isoformat(),
        },
    )


on_dossier_events = one_message(on_dossier_batches)  # one message: the batch of it alone (tests, replays)
