"""Message handlers (plain functions of ``(message, uow)``): keep the facts, mark periods dirty.

Every effect depends only on the SET of events received: a dossier is refolded from all its
stored events each time one of them arrives, the catalogue keeps the latest ``occurred_at``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.tables import (
    dirty_period,
    dossier,
    dossier_event,
    petition,
    procedure,
    rating,
    score,
    unit,
)
from services.scoring.codec import facts_to_json
from services.scoring.domain import DomainEvent, fold_dossier
from services.scoring.periods import months_between
from shared.contracts import DossierEventsAccepted, ProcedureEventsAccepted, RawEvent, UnitsChanged
from shared.contracts.feedback import PetitionChanged, RatingSubmitted
from shared.messaging.topology import IncomingMessage
from shared.unit_of_work import UnitOfWork


def _domain(e: RawEvent) -> DomainEvent:
    return DomainEvent(e.source, e.event_id, e.type, datetime.fromisoformat(e.occurred_at), e.data)


async def mark_dirty(uow: UnitOfWork, periods: Iterable[str]) -> None:
    rows = [{"period": p} for p in sorted(set(periods))]
    if rows:
        # DO UPDATE (not NOTHING) locks the row: a refresher claiming the period waits for this
        # transaction, so it never reads the facts from before it and drops the mark.
        stmt = pg_insert(dirty_period).values(rows)
        await uow.session.execute(
            stmt.on_conflict_do_update(index_elements=[dirty_period.c.period], set_={"marked_at": func.now()})
        )


async def mark_all_scored_dirty(uow: UnitOfWork, now: datetime) -> None:
    """A catalogue or unit-tree change touches every period already scored, and the running one."""
    labels = (await uow.session.execute(select(score.c.period).distinct())).scalars().all()
    await mark_dirty(uow, [*labels, *months_between(now, now)])


async def lock_dossiers(session: AsyncSession, dossier_ids: list[str]) -> None:
    """Serialise transactions that touch the same dossier (until commit).

    Each batch refolds its dossiers from all their stored events. Two deliveries about one
    dossier applied at once would each see only their own uncommitted events, and the last
    to commit would store a fold missing the other's: the lock makes the second wait and
    then see the first's events. Locks are taken in one order (by hash) so two batches with
    overlapping dossiers cannot deadlock.
    """
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(h) FROM "
            "(SELECT DISTINCT hashtextextended(d, 0) AS h FROM unnest(CAST(:ids AS text[])) AS d ORDER BY h) AS l"
        ),
        {"ids": dossier_ids},
    )


async def apply_dossier_events(events: list[RawEvent], uow: UnitOfWork, *, now: datetime) -> set[str]:
    """Store a batch, refold the dossiers it touches, mark their months dirty (one transaction)."""
    rows = [
        {
            "source": e.source,
            "event_id": e.event_id,
            "dossier_id": str(e.data.get("dossier_id", "")),
            "type": e.type,
            "occurred_at": datetime.fromisoformat(e.occurred_at),
            "data": e.data,
        }
        for e in events
        if e.data.get("dossier_id")
    ]
    if not rows:
        return set()
    s = uow.session
    ids: list[str] = sorted({str(r["dossier_id"]) for r in rows})
    await lock_dossiers(s, ids)
    await s.execute(pg_insert(dossier_event).values(rows).on_conflict_do_nothing())
    stored = await s.execute(select(dossier_event).where(dossier_event.c.dossier_id.in_(ids)))
    by_dossier: dict[str, list[DomainEvent]] = defaultdict(list)
    for r in stored.mappings():
        by_dossier[r["dossier_id"]].append(
            DomainEvent(r["source"], r["event_id"], r["type"], r["occurred_at"], r["data"])
        )
    old = {
        r.dossier_id: r
        for r in await s.execute(
            select(dossier.c.dossier_id, dossier.c.received_at, dossier.c.finished_at).where(
                dossier.c.dossier_id.in_(ids)
            )
        )
    }
    upserts: list[dict[str, Any]] = []
    dirty: set[str] = set()
    for dossier_id in ids:
        facts = fold_dossier(dossier_id, by_dossier[dossier_id], {})
        if facts is None:
            continue  # no receipt yet: folded when it arrives
        upserts.append(
            {
                "dossier_id": dossier_id,
                "unit_code": facts.unit_code,
                "procedure_code": facts.procedure_code,
                "received_at": facts.received_at,
                "finished_at": facts.finished_at,
                "facts": facts_to_json(facts),
            }
        )
        start, end = facts.received_at, facts.finished_at or now
        if (prev := old.get(dossier_id)) is not None:
            start = min(start, prev.received_at)
            end = max(end, prev.finished_at or now)
        dirty.update(months_between(start, max(end, start)))
    if upserts:
        stmt = pg_insert(dossier).values(upserts)
        await s.execute(
            stmt.on_conflict_do_update(
                index_elements=[dossier.c.dossier_id],
                set_={
                    c: stmt.excluded[c] for c in ("unit_code", "procedure_code", "received_at", "finished_at", "facts")
                },
            )
        )
    await mark_dirty(uow, dirty)
    return dirty


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
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[procedure.c.code],
            set_={"occurred_at": ex.occurred_at, "event_id": ex.event_id, "data": ex.data},
            where=or_(
                procedure.c.occurred_at < ex.occurred_at,
                and_(procedure.c.occurred_at == ex.occurred_at, procedure.c.event_id < ex.event_id),
            ),
        )
    )
    await mark_all_scored_dirty(uow, now)


async def apply_units(msg: UnitsChanged, uow: UnitOfWork, *, now: datetime) -> None:
    rows = [u.model_dump() for u in msg.units]
    for r in rows:
        for k in ("valid_from", "valid_to"):
            r[k] = datetime.fromisoformat(r[k]).date() if r[k] else None
    if not rows:
        return
    stmt = pg_insert(unit).values(rows)
    cols = ("name", "level", "parent_code", "valid_from", "valid_to", "successor_code")
    await uow.session.execute(
        stmt.on_conflict_do_update(index_elements=[unit.c.code], set_={c: stmt.excluded[c] for c in cols})
    )
    await mark_all_scored_dirty(uow, now)


async def apply_rating(msg: RatingSubmitted, uow: UnitOfWork, *, now: datetime) -> None:
    """The current rating per dossier: latest (rated_at, rating_id) wins."""
    stmt = pg_insert(rating).values(
        dossier_id=msg.dossier_id,
        rating_id=msg.rating_id,
        level=msg.level,
        criteria=msg.criteria,
        rated_at=msg.rated_at,
    )
    ex = stmt.excluded
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[rating.c.dossier_id],
            set_={"rating_id": ex.rating_id, "level": ex.level, "criteria": ex.criteria, "rated_at": ex.rated_at},
            where=or_(
                rating.c.rated_at < ex.rated_at,
                and_(rating.c.rated_at == ex.rated_at, rating.c.rating_id < ex.rating_id),
            ),
        )
    )
    await mark_dirty(uow, months_between(msg.rated_at, now))


async def apply_petition(msg: PetitionChanged, uow: UnitOfWork, *, now: datetime) -> None:
    """A petition's state: the highest version wins."""
    stmt = pg_insert(petition).values(
        petition_id=msg.petition_id,
        version=msg.version,
        unit_code=msg.unit_code,
        received_at=msg.received_at,
        data=msg.model_dump(mode="json"),
    )
    ex = stmt.excluded
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[petition.c.petition_id],
            set_={"version": ex.version, "unit_code": ex.unit_code, "received_at": ex.received_at, "data": ex.data},
            where=petition.c.version < ex.version,
        )
    )
    await mark_dirty(uow, months_between(msg.received_at, now))


async def on_message(message: IncomingMessage, uow: UnitOfWork) -> None:
    """The one consumer of ``scoring.dossier-events``: dispatch on the routing key."""
    body = orjson.loads(message.body)
    now = datetime.now(UTC)
    key = message.routing_key
    if key == DossierEventsAccepted.routing_key:
        await apply_dossier_events(DossierEventsAccepted.model_validate(body).events, uow, now=now)
    elif key == ProcedureEventsAccepted.routing_key:
        await apply_procedure_events(ProcedureEventsAccepted.model_validate(body).events, uow, now=now)
    elif key == UnitsChanged.routing_key:
        await apply_units(UnitsChanged.model_validate(body), uow, now=now)
    elif key == RatingSubmitted.routing_key:
        await apply_rating(RatingSubmitted.model_validate(body), uow, now=now)
    elif key == PetitionChanged.routing_key:
        await apply_petition(PetitionChanged.model_validate(body), uow, now=now)
