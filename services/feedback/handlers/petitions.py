"""Petitions (phản ánh, kiến nghị): filing, staff transitions, citizens' follow-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.feedback.adapters import repository
from services.feedback.adapters.crypto import Sealer, new_token
from services.feedback.adapters.tables import access_lock, petition, petition_log, submission
from services.feedback.domain import lockout
from services.feedback.domain import petition as lifecycle
from services.feedback.domain.categories import classification
from services.feedback.domain.petition import Action, PetitionState
from services.feedback.domain.petition_access import AccessPolicy, address_key, petition_key
from shared.calendar import WorkingCalendar, local_date
from shared.contracts.feedback import PetitionChanged
from shared.identity import Principal
from shared.unit_of_work import UnitOfWork
from shared.unit_tree import covers, subtree
from shared.web import ApiError

PETITION_ID_CHARS = 10
ACCESS_CODE_CHARS = 8
NOT_FOUND = "no petition with this id and access code"
LOCKED = "too many wrong access codes; try again in an hour"
# Attempt counters untouched for this long are forgotten.
ACCESS_LOCK_RETENTION = timedelta(days=1)


@dataclass(frozen=True)
class NewPetition:
    unit_code: str
    dossier_id: str | None
    category: str
    title: str
    content: str
    contact: str | None


def _event(row: Any, state: PetitionState, change: str, at: datetime) -> PetitionChanged:
    return PetitionChanged(
        petition_id=row.petition_id,
        version=state.version,
        change=change,
        changed_at=at,
        unit_code=state.unit_code,
        dossier_id=row.dossier_id,
        category=row.category,
        classification=classification(row.category),
        status=state.status.value,
        received_at=state.received_at,
        clock_started_at=state.clock_started_at,
        refuse_due_at=state.deadlines.refuse_due_at,
        info_due_at=state.deadlines.info_due_at,
        answer_due_at=state.deadlines.answer_due_at,
        publish_due_at=state.deadlines.publish_due_at,
        refused_at=state.refused_at,
        info_requested_at=state.info_requested_at,
        answered_at=state.answered_at,
        published_at=state.published_at,
        handled_on_time=state.handled_on_time,
        transfers=state.transfers,
        likes=state.likes,
        dislikes=state.dislikes,
        petitioned_again=row.petitioned_again,
    )


async def _record(
    uow: UnitOfWork, row: Any, state: PetitionState, change: str, actor: str, at: datetime, **texts: Any
) -> None:
    await uow.session.execute(
        update(petition)
        .where(petition.c.petition_id == row.petition_id)
        .values(**repository.state_columns(state), **texts, updated_at=at)
    )
    await uow.session.execute(
        insert(petition_log).values(
            petition_id=row.petition_id,
            version=state.version,
            change=change,
            actor=actor,
            unit_code=state.unit_code,
            status=state.status.value,
            at=at,
        )
    )
    uow.publish(_event(row, state, change, at))


async def file_petition(
    new: NewPetition,
    *,
    uow: UnitOfWork,
    calendar: WorkingCalendar,
    sealer: Sealer,
    client_address: str,
    now: datetime,
    duplicate_window: timedelta,
) -> tuple[str, str]:
    """Receive a petition; returns (petition_id, access_code). The code is shown once, stored hashed."""
    session = uow.session
    if not await repository.unit_in_force(session, new.unit_code, local_date(now)):
        raise ApiError(422, "the request is not valid", details=[{"field": "unit_code", "reason": "unknown unit"}])
    fingerprint = sealer.fingerprint(client_address, new.unit_code, new.title.strip(), new.content.strip())
    # Serialise identical submissions so two parallel copies cannot both pass the check.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(fingerprint[:8], "big", signed=True)}
    )
    await session.execute(delete(submission).where(submission.c.at < now - duplicate_window))
    seen = select(submission.c.at).where(
        submission.c.fingerprint == fingerprint, submission.c.at >= now - duplicate_window
    )
    if (await session.execute(seen)).first() is not None:
        raise ApiError(409, "the same petition was just sent from here; it is already received")
    await session.execute(insert(submission).values(fingerprint=fingerprint, at=now))
    again = False
    if new.dossier_id:
        again = bool((await session.execute(select(exists().where(petition.c.dossier_id == new.dossier_id)))).scalar())
    petition_id = "PA" + new_token(PETITION_ID_CHARS)
    access_code = new_token(ACCESS_CODE_CHARS)
    state = lifecycle.receive(new.unit_code, now, calendar)
    await session.execute(
        insert(petition).values(
            petition_id=petition_id,
            access_code_hash=sealer.access_code_hash(petition_id, access_code),
            dossier_id=new.dossier_id,
            category=new.category,
            title=new.title,
            content=new.content,
            contact_encrypted=sealer.seal(new.contact) if new.contact else None,
            petitioned_again=again,
            **repository.state_columns(state),
        )
    )
    row = await repository.load_petition(session, petition_id)
    await session.execute(
        insert(petition_log).values(
            petition_id=petition_id,
            version=state.version,
            change=Action.RECEIVE.value,
            actor="citizen",
            unit_code=state.unit_code,
            status=state.status.value,
            at=now,
        )
    )
    uow.publish(_event(row, state, Action.RECEIVE.value, now))
    return petition_id, access_code


@dataclass(frozen=True)
class AccessGuard:
    """Checks and counts a citizen's access-code attempts (domain.petition_access).

    Counting happens in a transaction of its own, so a wrong code is counted although the
    request that carried it fails and rolls back.
    """

    engine: AsyncEngine
    sealer: Sealer
    client_address: str
    now: datetime
    policy: AccessPolicy = field(default_factory=AccessPolicy)

    def _limits(self, petition_id: str) -> dict[str, int]:
        address = self.sealer.fingerprint("petition-access", self.client_address)
        return {
            petition_key(petition_id): self.policy.petition_max_failures,
            address_key(address): self.policy.address_max_failures,
        }

    async def locked(self, petition_id: str) -> bool:
        keys = list(self._limits(petition_id))
        async with self.engine.connect() as connection:
            query = select(access_lock.c.lock_key).where(
                access_lock.c.lock_key.in_(keys), access_lock.c.locked_until > self.now
            )
            return (await connection.execute(query)).first() is not None

    async def count_failure(self, petition_id: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(access_lock).where(
                    or_(access_lock.c.locked_until.is_(None), access_lock.c.locked_until < self.now),
                    access_lock.c.first_failure_at < self.now - ACCESS_LOCK_RETENTION,
                )
            )
            # Always in key order: two requests never wait on each other's rows crosswise.
            for key, max_failures in sorted(self._limits(petition_id).items()):
                await connection.execute(pg_insert(access_lock).values(lock_key=key).on_conflict_do_nothing())
                row = (
                    await connection.execute(select(access_lock).where(access_lock.c.lock_key == key).with_for_update())
                ).one()
                after = lockout.after_failure(
                    lockout.LockState(row.failures, row.first_failure_at, row.locked_until),
                    self.now,
                    max_failures=max_failures,
                    lock_for=self.policy.lock_for,
                )
                await connection.execute(
                    update(access_lock)
                    .where(access_lock.c.lock_key == key)
                    .values(
                        failures=after.failures,
                        first_failure_at=after.first_failure_at,
                        locked_until=after.locked_until,
                    )
                )


async def citizen_petition(
    uow: UnitOfWork, petition_id: str, access_code: str, guard: AccessGuard, *, for_update: bool = False
) -> Any:
    """The petition if the access code matches; one answer for unknown id and wrong code.

    423 while the petition or the caller's address is locked for too many wrong codes.
    """
    if await guard.locked(petition_id):
        raise ApiError(423, LOCKED)
    row = await repository.load_petition(uow.session, petition_id, for_update=for_update)
    if row is None or not guard.sealer.access_code_matches(petition_id, access_code, row.access_code_hash):
        await guard.count_failure(petition_id)
        raise ApiError(404, NOT_FOUND)
    return row


async def staff_petition(uow: UnitOfWork, petition_id: str, principal: Principal, *, for_update: bool = False) -> Any:
    """The petition if it belongs to the staff member's units (subtree of principal.unit)."""
    row = await repository.load_petition(uow.session, petition_id, for_update=for_update)
    if row is None:
        raise ApiError(404, "no petition with this id")
    if not principal.is_admin:
        parents = await repository.unit_parents(uow.session)
        if principal.unit is None or not covers(parents, [principal.unit], row.unit_code):
            raise ApiError(403, "this petition belongs to a unit outside yours")
    return row


def _transition(state: PetitionState, action: Action, fn: Any, *args: Any) -> PetitionState:
    try:
        return fn(state, *args)
    except lifecycle.IllegalTransition as exc:
        raise ApiError(409, str(exc), code="illegal_transition") from exc


async def staff_action(
    petition_id: str,
    action: Action,
    *,
    principal: Principal,
    uow: UnitOfWork,
    calendar: WorkingCalendar,
    now: datetime,
    text_value: str | None = None,
    to_unit_code: str | None = None,
) -> Any:
    """refuse / request_info / answer / publish / transfer by staff of the petition's unit."""
    row = await staff_petition(uow, petition_id, principal, for_update=True)
    state = repository.state_of(row)
    texts: dict[str, Any] = {}
    if action is Action.REFUSE:
        new_state = _transition(state, action, lifecycle.refuse, now)
        texts["refusal_reason"] = text_value
    elif action is Action.REQUEST_INFO:
        new_state = _transition(state, action, lifecycle.request_info, now)
        texts["question"] = text_value
    elif action is Action.ANSWER:
        new_state = _transition(state, action, lifecycle.answer, now, calendar)
        texts["answer"] = text_value
    elif action is Action.PUBLISH:
        new_state = _transition(state, action, lifecycle.publish, now)
    elif action is Action.TRANSFER:
        assert to_unit_code is not None
        if not await repository.unit_in_force(uow.session, to_unit_code, local_date(now)):
            raise ApiError(
                422, "the request is not valid", details=[{"field": "to_unit_code", "reason": "unknown unit"}]
            )
        if to_unit_code == state.unit_code:
            raise ApiError(409, "the petition is already at this unit", code="illegal_transition")
        new_state = _transition(state, action, lifecycle.transfer, to_unit_code, now, calendar)
    else:  # pragma: no cover - routes only send the actions above
        raise ValueError(action)
    await _record(uow, row, new_state, action.value, principal.sub or "staff", now, **texts)
    return await repository.load_petition(uow.session, petition_id)


async def react(
    petition_id: str, access_code: str, reaction: str, *, uow: UnitOfWork, guard: AccessGuard, now: datetime
) -> Any:
    row = await citizen_petition(uow, petition_id, access_code, guard, for_update=True)
    state = repository.state_of(row)
    new_state = _transition(state, Action.REACT, lifecycle.react, reaction)
    if new_state is not state:
        await _record(uow, row, new_state, Action.REACT.value, "citizen", now)
    return await repository.load_petition(uow.session, petition_id)


async def add_information(
    petition_id: str,
    access_code: str,
    information: str,
    *,
    uow: UnitOfWork,
    guard: AccessGuard,
    calendar: WorkingCalendar,
    now: datetime,
) -> Any:
    """The citizen answers the unit's question: the petition is received again."""
    row = await citizen_petition(uow, petition_id, access_code, guard, for_update=True)
    state = repository.state_of(row)
    new_state = _transition(state, Action.SUPPLEMENT, lifecycle.supplement, now, calendar)
    await _record(uow, row, new_state, Action.SUPPLEMENT.value, "citizen", now, supplement=information)
    return await repository.load_petition(uow.session, petition_id)


async def list_for_staff(
    uow: UnitOfWork, principal: Principal, *, unit_code: str | None, status: str | None, limit: int, offset: int
) -> tuple[int, list[Any]]:
    parents = await repository.unit_parents(uow.session)
    root = unit_code or principal.unit
    if root is None:
        raise ApiError(403, "your token names no unit")
    if not principal.is_admin and (principal.unit is None or not covers(parents, [principal.unit], root)):
        raise ApiError(403, "this unit is outside yours")
    codes = subtree(parents, root)
    query = select(petition).where(petition.c.unit_code.in_(codes))
    if status:
        query = query.where(petition.c.status == status)
    total = (await uow.session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await uow.session.execute(
            query.order_by(petition.c.answer_due_at, petition.c.petition_id).limit(limit).offset(offset)
        )
    ).all()
    return total, list(rows)
