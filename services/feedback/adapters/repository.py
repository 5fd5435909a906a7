"""Queries of the feedback schema: units, petitions as domain states, current ratings."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters.tables import dossier_unit, petition, unit
from services.feedback.domain.petition import Deadlines, PetitionState, Status
from shared.db import driver_connection


async def unit_parents(session: AsyncSession) -> dict[str, str | None]:
    rows = (await session.execute(select(unit.c.code, unit.c.parent_code))).all()
    return {r.code: r.parent_code for r in rows}


async def open_units(session: AsyncSession, today: date) -> list[Any]:
    """Units a petition may be addressed to today (in force), for forms and validation."""
    query = (
        select(unit.c.code, unit.c.name, unit.c.level, unit.c.parent_code)
        .where(or_(unit.c.valid_to.is_(None), unit.c.valid_to >= today))
        .where(or_(unit.c.valid_from.is_(None), unit.c.valid_from <= today))
        .order_by(unit.c.code)
    )
    return list((await session.execute(query)).all())


async def unit_in_force(session: AsyncSession, code: str, today: date) -> bool:
    query = select(unit.c.code).where(
        and_(
            unit.c.code == code,
            or_(unit.c.valid_to.is_(None), unit.c.valid_to >= today),
            or_(unit.c.valid_from.is_(None), unit.c.valid_from <= today),
        )
    )
    return (await session.execute(query)).first() is not None


async def dossier_owners(session: AsyncSession, dossier_ids: list[str]) -> dict[str, str]:
    """dossier id → the unit that received it (or, until its receipt arrives, the unit it was
    transferred to): one query for a whole import."""
    if not dossier_ids:
        return {}
    owner = func.coalesce(dossier_unit.c.owner_unit_code, dossier_unit.c.unit_code)
    rows = await session.execute(
        select(dossier_unit.c.dossier_id, owner.label("owner")).where(dossier_unit.c.dossier_id.in_(set(dossier_ids)))
    )
    return {r.dossier_id: r.owner for r in rows}


# Advisory-lock class of "a dossier's held ratings" (the second key is the id's hash).
_HELD_LOCK = 7_310


async def lock_dossiers(session: AsyncSession, dossier_ids: list[str]) -> None:
    """Serialise holding and applying ratings per dossier (an import and the dossier's events
    may race); taken in one order, so two batches cannot deadlock. On the driver connection:
    the dossier consumer takes these for every batch that brings new dossiers."""
    if dossier_ids:
        conn = await driver_connection(session)
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, h) FROM "
            "(SELECT DISTINCT hashtext(d) AS h FROM unnest($2::text[]) AS d ORDER BY h) AS k",
            _HELD_LOCK,
            dossier_ids,
        )


async def holding_any(session: AsyncSession, dossier_ids: list[str]) -> bool:
    """Whether a rating is held for any of the dossiers: one probe of the dossier_id index."""
    conn = await driver_connection(session)
    found = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM feedback.held_rating WHERE dossier_id = ANY($1::text[]) AND status = 'held')",
        dossier_ids,
    )
    return bool(found)


async def dossier_unit_code(session: AsyncSession, dossier_id: str) -> str | None:
    row = (
        await session.execute(select(dossier_unit.c.unit_code).where(dossier_unit.c.dossier_id == dossier_id))
    ).first()
    return row.unit_code if row else None


async def load_petition(session: AsyncSession, petition_id: str, *, for_update: bool = False) -> Any | None:
    query = select(petition).where(petition.c.petition_id == petition_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


def state_of(row: Any) -> PetitionState:
    return PetitionState(
        unit_code=row.unit_code,
        status=Status(row.status),
        received_at=row.received_at,
        clock_started_at=row.clock_started_at,
        deadlines=Deadlines(
            refuse_due_at=row.refuse_due_at,
            info_due_at=row.info_due_at,
            answer_due_at=row.answer_due_at,
            publish_due_at=row.publish_due_at,
        ),
        refused_at=row.refused_at,
        info_requested_at=row.info_requested_at,
        answered_at=row.answered_at,
        published_at=row.published_at,
        transfers=row.transfers,
        reaction=row.reaction,
        version=row.version,
    )


def state_columns(state: PetitionState) -> dict[str, Any]:
    return {
        "unit_code": state.unit_code,
        "status": state.status.value,
        "received_at": state.received_at,
        "clock_started_at": state.clock_started_at,
        "refuse_due_at": state.deadlines.refuse_due_at,
        "info_due_at": state.deadlines.info_due_at,
        "answer_due_at": state.deadlines.answer_due_at,
        "publish_due_at": state.deadlines.publish_due_at,
        "refused_at": state.refused_at,
        "info_requested_at": state.info_requested_at,
        "answered_at": state.answered_at,
        "published_at": state.published_at,
        "transfers": state.transfers,
        "reaction": state.reaction,
        "version": state.version,
    }
