"""Message handlers (plain functions of ``(message, uow)``; ``on_messages`` takes a transaction's
batch of ingest's messages at once): keep the events, mark what changed.

Every effect depends only on the SET of events received: a dossier's events are stored and the
dossier flagged as changed (:mod:`services.scoring.adapters.dossier_flags`; every dossier whose
procedure changed is flagged ``recheck_at = REJUDGE`` directly: judged again from its stored
facts); the refresher folds it from all its stored events and judges it into per-period
contributions (:mod:`services.scoring.application.judging`). A rating of a dossier, or a
petition naming one, flags it for judging at the rating's or petition's instant (its 5.4 flag;
its facts unchanged).
The catalogue keeps the latest ``occurred_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.scoring.adapters.dirty_periods import mark_periods, mark_scored_periods
from services.scoring.adapters.dossier_flags import raise_flags, rejudge_procedures
from services.scoring.adapters.period_state import announce_reference_change
from services.scoring.adapters.repository import petition_facts
from services.scoring.adapters.tables import (
    petition,
    procedure,
    rating,
    unit,
)
from services.scoring.domain import DomainEvent
from services.scoring.domain.period_labels import history_floor, months_between
from shared.contracts import DossierEventsAccepted, ProcedureEventsAccepted, RawEvent, UnitsChanged
from shared.contracts.feedback import PetitionChanged, RatingSubmitted
from shared.db import driver_connection as driver
from shared.messaging.topology import IncomingMessage
from shared.trace_context import current_traceparent
from shared.unit_copy import unit_rows, upsert_units
from shared.unit_of_work import UnitOfWork


def _domain(e: RawEvent) -> DomainEvent:
    return DomainEvent(e.source, e.event_id, e.type, datetime.fromisoformat(e.occurred_at), e.data)


async def mark_dirty(uow: UnitOfWork, periods: Iterable[str]) -> None:
    await mark_periods(uow.session, periods)


async def mark_all_scored_dirty(uow: UnitOfWork, now: datetime) -> None:
    """A catalogue or unit-tree change touches every period already scored, and the running one."""
    await mark_scored_periods(uow.session, also=months_between(now, now))


_INSERT_EVENTS = """
INSERT INTO scoring.dossier_event (source, event_id, dossier_id, type, occurred_at, data)
SELECT s, e, d, t, o, x::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[]) AS u(s, e, d, t, o, x)
ON CONFLICT DO NOTHING
RETURNING source, event_id, dossier_id
"""


@dataclass(frozen=True)
class AcceptedBatch:
    """One ingest message's dossier events, when ingest accepted them and the message's trace."""

    events: Sequence[RawEvent]
    accepted_at: datetime | None = None
    traceparent: str | None = None


async def apply_dossier_events(
    events: list[RawEvent], uow: UnitOfWork, *, now: datetime, accepted_at: datetime | None = None
) -> set[str]:
    """Store one message's events and flag the dossiers that got a new event (the current span's trace)."""
    return await apply_accepted_batches([AcceptedBatch(events, accepted_at, current_traceparent())], uow)


async def apply_accepted_batches(batches: Sequence[AcceptedBatch], uow: UnitOfWork) -> set[str]:
    """Store messages' events and flag the dossiers that got a new event for judging (one transaction).

    Two bulk statements whatever the number of messages and no folding here: the judging step
    (:mod:`services.scoring.application.judging`) folds each flagged dossier from ALL its stored
    events once per refresh, however many messages touched it meanwhile. A duplicate changes
    nothing (its insert returns no row). A flagged dossier keeps, as if the messages had come one
    by one in this order, the earliest acceptance time of the messages that brought it a new
    event (the freshness clock) and the trace of the last of them (the refresh span links to it).
    Returns the ids of the dossiers flagged.
    """
    first_of: dict[tuple[str, str], int] = {}  # an event repeated in two messages: the first stores it
    firsts: dict[tuple[str, str], RawEvent] = {}
    for n, batch in enumerate(batches):
        for e in batch.events:
            if e.data.get("dossier_id"):
                first_of.setdefault((e.source, e.event_id), n)
                firsts.setdefault((e.source, e.event_id), e)
    if not firsts:
        return set()
    # In key order: two batches repeating events (a redelivery) in other orders wait for each
    # other's keys in one order, never in a cycle.
    rows = [firsts[k] for k in sorted(firsts)]
    conn = await driver(uow.session)
    inserted = await conn.fetch(
        _INSERT_EVENTS,
        [e.source for e in rows],
        [e.event_id for e in rows],
        [str(e.data["dossier_id"]) for e in rows],
        [e.type for e in rows],
        [datetime.fromisoformat(e.occurred_at) for e in rows],
        [orjson.dumps(e.data).decode() for e in rows],
    )
    touched: dict[str, set[int]] = {}
    for source, event_id, dossier_id in inserted:
        touched.setdefault(dossier_id, set()).add(first_of[(source, event_id)])
    if not touched:
        return set()
    ids = sorted(touched)
    accepted: list[datetime | None] = []
    traces: list[str | None] = []
    for d in ids:
        mine = [batches[n] for n in sorted(touched[d])]
        accepted.append(min((b.accepted_at for b in mine if b.accepted_at), default=None))
        traces.append(next((b.traceparent for b in reversed(mine) if b.traceparent), None))
    await raise_flags(conn, ids, accepted, traces)
    return set(ids)


async def apply_procedure_events(events: list[RawEvent], uow: UnitOfWork, *, now: datetime) -> None:
    """Upsert the catalogue: a procedure changes only for a later (occurred_at, event_id)."""
    latest: dict[str, DomainEvent] = {}
    for e in map(_domain, events):
        code = str(e.data.get("procedure_code", ""))
        if code and (
            code not in latest or (e.occurred_at, e.event_id) > (latest[code].occurred_at, latest[code].event_id)
        ):
            latest[code] = e
    if not latest:
        return
    rows = [
        {"code": c, "occurred_at": e.occurred_at, "event_id": e.event_id, "data": dict(e.data)}
        for c, e in sorted(latest.items())
    ]
    stmt = pg_insert(procedure).values(rows)
    ex = stmt.excluded
    changed = await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[procedure.c.code],
            set_={"occurred_at": ex.occurred_at, "event_id": ex.event_id, "data": ex.data},
            where=or_(
                procedure.c.occurred_at < ex.occurred_at,
                and_(procedure.c.occurred_at == ex.occurred_at, procedure.c.event_id < ex.event_id),
            ),
        ).returning(procedure.c.code)
    )
    codes = list(changed.scalars())
    if codes:
        announce_reference_change(uow.session)
        await rejudge_procedures(await driver(uow.session), codes)
    await mark_all_scored_dirty(uow, now)


async def apply_units(msg: UnitsChanged, uow: UnitOfWork, *, now: datetime) -> None:
    rows = unit_rows(msg.units)
    if not rows:
        return
    await upsert_units(unit, rows, uow=uow)
    announce_reference_change(uow.session)
    await mark_all_scored_dirty(uow, now)


# A rating or petition at ``$2`` changes the verdicts judged after ``$2`` only: the dossier is
# due for judging from then (least: an earlier pending instant stays; null — never again — ends).
# Not the epoch, which means "its events changed, store its facts". A dossier set aside stays
# aside until its events change.
# Feedback never waits for a row lock: a dossier whose row another transaction holds (a judging
# chunk, which may have read the ratings already; a catalogue change; other feedback) is flagged
# instead, folded and judged at the next step with every rating by then (judging also schedules a
# rating dated after its instant). Waiting for the chunk made a feedback transaction of several
# messages, which locks rows in message order, able to close a cycle with a chunk, and an event
# batch wait behind it for the chunk (session 18's review).
# A dossier the statement's snapshot has no row of gets one and a flag, as the consumer's first
# events give it: its first events may be committing, and a chunk judging them may read the
# ratings before this one commits. One statement, one snapshot: every dossier is re-judged from
# ``$2``, flagged, or set aside.
_FLAG_FEEDBACK = """
WITH known AS MATERIALIZED (
    SELECT dossier_id, unjudgeable IS NOT NULL AS aside FROM scoring.dossier WHERE dossier_id = ANY($1::text[])
), rejudged AS (
    UPDATE scoring.dossier SET recheck_at = least(recheck_at, $2) WHERE dossier_id IN (
        SELECT dossier_id FROM scoring.dossier WHERE dossier_id = ANY($1::text[]) AND unjudgeable IS NULL
        ORDER BY dossier_id FOR UPDATE SKIP LOCKED)
    RETURNING dossier_id
), new_dossiers AS (
    INSERT INTO scoring.dossier (dossier_id)
    SELECT i FROM unnest($1::text[]) AS v(i) WHERE i NOT IN (SELECT dossier_id FROM known)
    ORDER BY i ON CONFLICT DO NOTHING
)
INSERT INTO scoring.dossier_flag (dossier_id)
SELECT i FROM unnest($1::text[]) AS v(i)
WHERE i NOT IN (SELECT dossier_id FROM rejudged) AND i NOT IN (SELECT dossier_id FROM known WHERE aside)
"""


async def flag_for_feedback(uow: UnitOfWork, dossier_ids: Iterable[str], at: datetime) -> None:
    """Re-judge ``dossier_ids`` from ``at`` (a rating of them or a petition naming them, given at
    ``at``); one scoring has no row of yet, or whose row is held, at the next step."""
    ids = sorted({i for i in dossier_ids if i})
    if ids:
        conn = await driver(uow.session)
        await conn.execute(_FLAG_FEEDBACK, ids, at)


async def apply_rating(msg: RatingSubmitted, uow: UnitOfWork, *, now: datetime) -> None:
    """Keep every rating (a redelivery changes nothing): the history, never only the latest.

    A period counts, per dossier, the latest rating given before its judging instant (the
    dossier's verdict: judging reads its ratings), so a rating given at ``t`` — however late it
    arrives, older or newer than the dossier's current one — can change exactly the periods
    judged after ``t``: the dossier is judged again from ``t``, and judging marks dirty the
    periods whose verdict changed. A month that ended by ``t`` is judged at its end, before
    ``t``, and nothing is removed from the history, so no earlier period can change.
    """
    stmt = pg_insert(rating).values(
        dossier_id=msg.dossier_id,
        rating_id=msg.rating_id,
        level=msg.level,
        criteria=msg.criteria,
        rated_at=msg.rated_at,
    )
    stored = await uow.session.execute(
        stmt.on_conflict_do_nothing(index_elements=[rating.c.dossier_id, rating.c.rating_id]).returning(
            rating.c.rating_id
        )
    )
    if stored.first() is not None:
        await flag_for_feedback(uow, [msg.dossier_id], msg.rated_at)


async def apply_petition(msg: PetitionChanged, uow: UnitOfWork, *, now: datetime) -> None:
    """A petition's state: the highest version wins.

    Its periods (5.1–5.3) are marked dirty. The dossier it names — before and after, if this
    version names another or moves its receipt — is judged again from the earlier receipt (5.4).
    """
    data = msg.model_dump(mode="json")
    named = msg.dossier_id or None
    before = (
        await uow.session.execute(
            select(petition.c.dossier_id, petition.c.received_at)
            .where(petition.c.petition_id == msg.petition_id)
            .with_for_update()
        )
    ).first()
    stmt = pg_insert(petition).values(
        petition_id=msg.petition_id,
        version=msg.version,
        unit_code=msg.unit_code,
        received_at=msg.received_at,
        data=data,
        ended_at=petition_facts(data).ended_at,
        dossier_id=named,
    )
    ex = stmt.excluded
    applied = await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[petition.c.petition_id],
            set_={
                "version": ex.version,
                "unit_code": ex.unit_code,
                "received_at": ex.received_at,
                "data": ex.data,
                "ended_at": ex.ended_at,
                "dossier_id": ex.dossier_id,
            },
            where=petition.c.version < ex.version,
        ).returning(petition.c.petition_id)
    )
    old_dossier, old_received = before if before is not None else (None, msg.received_at)
    if applied.first() is not None and (before is None or tuple(before) != (named, msg.received_at)):
        await flag_for_feedback(uow, [d for d in (old_dossier, named) if d], min(old_received, msg.received_at))
    # From the earlier receipt: a version that moves it leaves the months it counted in before.
    since = min(old_received, msg.received_at)
    await mark_dirty(uow, months_between(since, now, since=history_floor(now)))


async def on_message(message: IncomingMessage, uow: UnitOfWork) -> None:
    """One message of ``scoring.feedback-events`` (or of ingest's): dispatch on the producer's routing key."""
    body = orjson.loads(message.body)
    now = datetime.now(UTC)
    key = message.routing_key
    if key == DossierEventsAccepted.routing_key:
        batch = DossierEventsAccepted.model_validate(body)
        await apply_accepted_batches([_accepted(message, batch)], uow)
    elif key == ProcedureEventsAccepted.routing_key:
        await apply_procedure_events(ProcedureEventsAccepted.model_validate(body).events, uow, now=now)
    elif key == UnitsChanged.routing_key:
        await apply_units(UnitsChanged.model_validate(body), uow, now=now)
    elif key == RatingSubmitted.routing_key:
        await apply_rating(RatingSubmitted.model_validate(body), uow, now=now)
    elif key == PetitionChanged.routing_key:
        await apply_petition(PetitionChanged.model_validate(body), uow, now=now)
    else:
        # Never acknowledge what we cannot apply: the retry queue and then parking keep it.
        raise ValueError(f"unknown message {message.routing_key!r} with keys {sorted(body)[:5]}")


async def on_messages(messages: list[IncomingMessage], uow: UnitOfWork) -> None:
    """The batch handler of ``scoring.dossier-events``: a transaction's new messages in delivery order.

    Each run of consecutive dossier-event messages is stored with two statements for the whole
    run (:func:`apply_accepted_batches`); a procedure or unit message between them is applied
    where it stands (they are rare: the catalogue and the unit tree).
    """
    run: list[AcceptedBatch] = []
    for message in messages:
        if message.routing_key == DossierEventsAccepted.routing_key:
            run.append(_accepted(message, DossierEventsAccepted.model_validate(orjson.loads(message.body))))
            continue
        if run:
            await apply_accepted_batches(run, uow)
            run = []
        await on_message(message, uow)
    if run:
        await apply_accepted_batches(run, uow)


def _accepted(message: IncomingMessage, batch: DossierEventsAccepted) -> AcceptedBatch:
    # The consumer fills the message's traceparent; a direct call (tests, replays) has the current span's.
    return AcceptedBatch(batch.events, batch.accepted_at, message.traceparent or current_traceparent())
