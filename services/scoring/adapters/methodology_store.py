"""Uploaded methodology versions (bộ chỉ số do quản trị tải lên): stored, loaded, scored beside.

A version is immutable: an id (builtins included) is taken once. Adding one marks every period
already scored dirty, so the refresher computes it beside the others; no existing row of another
methodology changes. The worker and the API pick new versions up from the table without restart
(:func:`services.scoring.application.caches.sync_methodologies` reads the ids, and a document
only when it is new).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.dirty_periods import mark_scored_periods
from services.scoring.adapters.period_state import announce_reference_change
from services.scoring.adapters.tables import methodology
from services.scoring.domain import Methodology, methodology_from_dict
from services.scoring.domain.methodology import BUILTIN_IDS, builtin_document


def error_details(errors: list[str]) -> list[dict[str, str]]:
    """``"group G1: max_points …"`` → ``{"field": "group G1", "reason": "max_points …"}``."""
    out = []
    for e in errors:
        field, sep, reason = e.partition(": ")
        out.append({"field": field, "reason": reason} if sep else {"field": "methodology", "reason": e})
    return out


async def stored_ids(session: AsyncSession) -> set[str]:
    """The ids of the uploaded versions."""
    return set((await session.execute(select(methodology.c.id))).scalars().all())


async def stored_methodologies(session: AsyncSession, ids: Collection[str]) -> dict[str, Methodology]:
    """The uploaded versions ``ids``, loaded."""
    rows = await session.execute(select(methodology.c.id, methodology.c.document).where(methodology.c.id.in_(ids)))
    return {mid: methodology_from_dict(doc) for mid, doc in rows.all()}


async def stored_document(session: AsyncSession, methodology_id: str) -> dict[str, Any] | None:
    if methodology_id in BUILTIN_IDS:
        return builtin_document(methodology_id)
    doc = (
        await session.execute(select(methodology.c.document).where(methodology.c.id == methodology_id))
    ).scalar_one_or_none()
    return None if doc is None else dict(doc)


async def add_methodology(
    session: AsyncSession, doc: dict[str, Any], *, created_by: str, now: datetime
) -> dict[str, Any] | None:
    """Store a validated document and mark every scored period dirty; None if the id is taken."""
    mid = doc["id"]
    if mid in BUILTIN_IDS:
        return None
    inserted = await session.execute(
        insert(methodology)
        .values(id=mid, document=doc, created_by=created_by, created_at=now)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(methodology.c.id, methodology.c.created_by, methodology.c.created_at)
    )
    row = inserted.mappings().first()
    if row is None:
        return None
    await mark_scored_periods(session)
    announce_reference_change(session)  # the other API processes load it
    return dict(row)
