"""Ratings (đánh giá): a citizen's rating verified by the rating code, and imports."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.feedback.adapters import repository
from services.feedback.adapters.tables import code_lock, held_rating, rating, rating_history
from services.feedback.domain import lockout
from services.feedback.domain.ratings import becomes_current
from shared.calendar import local_date
from shared.contracts.feedback import RatingLevel, RatingSubmitted
from shared.db import driver_connection
from shared.identity import Principal
from shared.rating_code import RatingCodes
from shared.unit_of_work import UnitOfWork
from shared.unit_tree import covers

CITIZEN = "citizen"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewRating:
    dossier_id: str
    level: str
    criteria: dict[str, int]
    comment: str | None
    origin: str
    rated_at: datetime


@dataclass(frozen=True)
class Recorded:
    rating_id: str
    replaced: bool
    current: bool
    duplicate: bool = False
    # The same (origin, dossier, rated_at) was recorded before with another level, criteria or
    # comment: nothing is recorded, the first version stays.
    conflict: bool = False


@dataclass(frozen=True)
class RatingOutcome:
    result: Literal["recorded", "denied", "locked"]
    recorded: Recorded | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class LockPolicy:
    max_failures: int = lockout.MAX_FAILURES
    lock_for: timedelta = lockout.LOCK_FOR


async def record_rating(new: NewRating, *, uow: UnitOfWork) -> Recorded:
    """Keep the rating in the history; make it current unless a later one exists; announce it
    either way (scoring counts each rating for the periods judged after it was given)."""
    session = uow.session
    rating_id = uuid.uuid4().hex
    inserted = (
        await session.execute(
            pg_insert(rating_history)
            .values(
                rating_id=rating_id,
                dossier_id=new.dossier_id,
                level=new.level,
                criteria=new.criteria,
                comment=new.comment,
                origin=new.origin,
                rated_at=new.rated_at,
            )
            .on_conflict_do_nothing()
            .returning(rating_history.c.rating_id)
        )
    ).first()
    if inserted is None:
        first = (
            await session.execute(
                select(rating_history.c.level, rating_history.c.criteria, rating_history.c.comment).where(
                    rating_history.c.origin == new.origin,
                    rating_history.c.dossier_id == new.dossier_id,
                    rating_history.c.rated_at == new.rated_at,
                )
            )
        ).one()
        same = (first.level, first.criteria, first.comment) == (new.level, new.criteria, new.comment)
        return Recorded(rating_id="", replaced=False, current=False, duplicate=same, conflict=not same)
    existing = (
        await session.execute(
            select(rating.c.level, rating.c.rated_at).where(rating.c.dossier_id == new.dossier_id).with_for_update()
        )
    ).first()
    unit_code = await repository.dossier_unit_code(session, new.dossier_id)
    if existing is not None and not becomes_current(new.rated_at, existing.rated_at):
        # Older than the current one (an import of an earlier rating): history only, but still
        # announced — the periods judged between it and the current rating count it.
        uow.publish(_submitted(rating_id, new, unit_code, replaced=False, previous_level=None, current=False))
        return Recorded(rating_id=rating_id, replaced=False, current=False)
    values = {
        "rating_id": rating_id,
        "level": new.level,
        "criteria": new.criteria,
        "comment": new.comment,
        "origin": new.origin,
        "rated_at": new.rated_at,
    }
    stmt = pg_insert(rating).values(dossier_id=new.dossier_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[rating.c.dossier_id],
            set_={**values, "replacements": rating.c.replacements + 1},
        )
    )
    uow.publish(
        _submitted(
            rating_id,
            new,
            unit_code,
            replaced=existing is not None,
            previous_level=existing.level if existing is not None else None,
            current=True,
        )
    )
    return Recorded(rating_id=rating_id, replaced=existing is not None, current=True)


def _submitted(
    rating_id: str,
    new: NewRating,
    unit_code: str | None,
    *,
    replaced: bool,
    previous_level: RatingLevel | None,
    current: bool,
) -> RatingSubmitted:
    """The announcement of an accepted rating: levels and criteria only, never the comment."""
    return RatingSubmitted(
        rating_id=rating_id,
        dossier_id=new.dossier_id,
        unit_code=unit_code,
        level=new.level,  # type: ignore[arg-type]
        criteria=new.criteria,
        origin=new.origin,
        rated_at=new.rated_at,
        replaced=replaced,
        previous_level=previous_level,
        current=current,
    )


async def submit_rating(
    new: NewRating,
    code: str,
    *,
    uow: UnitOfWork,
    codes: RatingCodes,
    now: datetime,
    policy: LockPolicy,
) -> RatingOutcome:
    """A citizen's rating: the code must match, and the dossier id must not be locked.

    A wrong code is committed as a failure (the caller raises after the commit), so the
    lockout counts even though the request fails.
    """
    session = uow.session
    await session.execute(pg_insert(code_lock).values(dossier_id=new.dossier_id).on_conflict_do_nothing())
    row = (
        await session.execute(select(code_lock).where(code_lock.c.dossier_id == new.dossier_id).with_for_update())
    ).one()
    state = lockout.LockState(row.failures, row.first_failure_at, row.locked_until)
    if state.is_locked(now):
        return RatingOutcome("locked", locked_until=state.locked_until)
    today = local_date(now)
    owner = (await repository.dossier_owners(session, [new.dossier_id])).get(new.dossier_id)
    tried_every_unit = owner is None
    if owner is None:
        # The receipt's events may not have reached feedback yet: the code itself names its unit.
        owner = codes.owner_of(new.dossier_id, code, await repository.unit_parents(session), today=today)
    if not codes.verify(new.dossier_id, owner, code, today=today):
        if not tried_every_unit:
            # Refusing a wrong code must take as long for a known dossier as for an unknown one
            # (the unit list read, every unit tried), or the answer's time tells that it exists.
            codes.owner_of(new.dossier_id, code, await repository.unit_parents(session), today=today)
        after = lockout.after_failure(state, now, max_failures=policy.max_failures, lock_for=policy.lock_for)
        await session.execute(
            update(code_lock)
            .where(code_lock.c.dossier_id == new.dossier_id)
            .values(failures=after.failures, first_failure_at=after.first_failure_at, locked_until=after.locked_until)
        )
        return RatingOutcome("denied")
    await session.execute(delete(code_lock).where(code_lock.c.dossier_id == new.dossier_id))
    return RatingOutcome("recorded", recorded=await record_rating(new, uow=uow))


@dataclass
class ImportResult:
    accepted: int = 0
    duplicates: int = 0
    held: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "held": self.held, "rejected": self.rejected}


NOT_PERMITTED = "not permitted for this API key"
CONFLICT = (
    "conflict: a rating of this dossier from this origin at this time was already imported with "
    "another level or criteria; the first version stays"
)


def _conflict(index: int, new: NewRating) -> dict[str, Any]:
    # Named on rated_at: with origin and dossier_id it identifies the rating, as event_id does an event.
    return {"index": index, "dossier_id": new.dossier_id, "errors": [{"field": "rated_at", "reason": CONFLICT}]}


async def import_ratings(
    records: list[tuple[int, NewRating]],
    *,
    principal: Principal,
    uow: UnitOfWork,
) -> ImportResult:
    """Ratings collected elsewhere (the national portal): they count as citizens' own do.

    A dossier of a unit outside the key's units is refused. A dossier feedback does not know
    yet is held (its events may still be on the way) and applied when it arrives, only if the
    key covers the unit that received it (:func:`apply_held_ratings`).
    """
    result = ImportResult()
    session = uow.session
    owners = await repository.dossier_owners(session, [new.dossier_id for _, new in records])
    parents = await repository.unit_parents(session) if owners else {}
    unknown: list[tuple[int, NewRating]] = []
    for index, new in records:
        unit_code = owners.get(new.dossier_id)
        if unit_code is None:
            unknown.append((index, new))
            continue
        if not covers(parents, principal.units, unit_code):
            result.rejected.append(
                {
                    "index": index,
                    "dossier_id": new.dossier_id,
                    "errors": [{"field": "dossier_id", "reason": NOT_PERMITTED}],
                }
            )
            continue
        recorded = await record_rating(new, uow=uow)
        if recorded.conflict:
            result.rejected.append(_conflict(index, new))
        elif recorded.duplicate:
            result.duplicates += 1
        else:
            result.accepted += 1
    if unknown:
        # The dossier's events may be committing right now: with its lock held, look again.
        await repository.lock_dossiers(session, sorted({new.dossier_id for _, new in unknown}))
        arrived = await repository.dossier_owners(session, [new.dossier_id for _, new in unknown])
        if arrived:
            late = [(i, new) for i, new in unknown if new.dossier_id in arrived]
            unknown = [(i, new) for i, new in unknown if new.dossier_id not in arrived]
            late_result = await import_ratings(late, principal=principal, uow=uow)
            result.accepted += late_result.accepted
            result.duplicates += late_result.duplicates
            result.rejected += late_result.rejected
    if unknown:
        held, conflicts = await _hold(unknown, principal=principal, uow=uow)
        result.held += held
        result.duplicates += len(unknown) - held - len(conflicts)
        result.rejected += [_conflict(index, new) for index, new in conflicts]
    return result


async def _hold(
    records: list[tuple[int, NewRating]], *, principal: Principal, uow: UnitOfWork
) -> tuple[int, list[tuple[int, NewRating]]]:
    """Keep ratings of unknown dossiers until their events arrive (one statement for the whole
    import); the same record twice is a duplicate, a changed one a conflict (the first stays).
    Returns how many were held and the conflicts."""
    conn = await driver_connection(uow.session)
    news = [new for _, new in records]
    hold_ids = [uuid.uuid4().hex for _ in news]
    inserted = await conn.fetch(
        """INSERT INTO feedback.held_rating
             (hold_id, dossier_id, level, criteria, origin, rated_at, source, key_id, key_units)
           SELECT h, d, l, c::jsonb, o, r, $7, $8, $9::text[]
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
             AS t(h, d, l, c, o, r)
           ON CONFLICT DO NOTHING RETURNING hold_id""",
        hold_ids,
        [n.dossier_id for n in news],
        [n.level for n in news],
        [orjson.dumps(n.criteria).decode() for n in news],
        [n.origin for n in news],
        [n.rated_at for n in news],
        principal.source or "",
        principal.key_id,
        list(principal.units),
    )
    new_ids = {r["hold_id"] for r in inserted}
    repeats = [(record, n) for record, n, h in zip(records, news, hold_ids, strict=True) if h not in new_ids]
    if not repeats:
        return len(inserted), []
    rows = await conn.fetch(
        """SELECT origin, dossier_id, rated_at, level, criteria::text AS criteria FROM feedback.held_rating
           WHERE (origin, dossier_id, rated_at) IN (
             SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]))""",
        [n.origin for _, n in repeats],
        [n.dossier_id for _, n in repeats],
        [n.rated_at for _, n in repeats],
    )
    first = {(r["origin"], r["dossier_id"], r["rated_at"]): (r["level"], orjson.loads(r["criteria"])) for r in rows}
    conflicts = [
        record for record, n in repeats if first.get((n.origin, n.dossier_id, n.rated_at)) != (n.level, n.criteria)
    ]
    return len(inserted), conflicts


async def apply_held_ratings(owners: dict[str, str], *, uow: UnitOfWork, now: datetime) -> tuple[int, int]:
    """Ratings held for dossiers that just became known: applied when the importer's key covers
    the dossier's unit, else dropped; either way the held row records what happened. (applied, dropped)

    Called for the dossiers a batch of events just created: a rating is held only while its
    dossier is unknown, so a dossier already known has none. Nothing held (the back-fill's
    case) costs the lock statement and one indexed query."""
    session = uow.session
    ids = sorted(owners)
    await repository.lock_dossiers(session, ids)
    if not await repository.holding_any(session, ids):
        return 0, 0
    held = (
        await session.execute(
            select(held_rating)
            .where(held_rating.c.dossier_id.in_(list(owners)), held_rating.c.status == "held")
            .order_by(held_rating.c.rated_at, held_rating.c.hold_id)
            .with_for_update()
        )
    ).all()
    if not held:
        return 0, 0
    parents = await repository.unit_parents(session)
    applied = dropped = 0
    for row in held:
        unit_code = owners[row.dossier_id]
        if covers(parents, row.key_units, unit_code):
            new = NewRating(row.dossier_id, row.level, dict(row.criteria), None, row.origin, row.rated_at)
            await record_rating(new, uow=uow)
            status, resolution = "applied", f"dossier received by {unit_code}"
            applied += 1
        else:
            status, resolution = "dropped", f"{NOT_PERMITTED}: the dossier belongs to unit {unit_code}"
            dropped += 1
            log.warning(
                "held rating dropped",
                extra={"hold_id": row.hold_id, "source": row.source, "key_id": row.key_id, "unit_code": unit_code},
            )
        await session.execute(
            update(held_rating)
            .where(held_rating.c.hold_id == row.hold_id)
            .values(status=status, resolution=resolution, resolved_at=now)
        )
    return applied, dropped
