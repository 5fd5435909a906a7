"""Rows to the views each audience may see."""

from __future__ import annotations

from typing import Any

from services.feedback.adapters import repository
from services.feedback.adapters.crypto import Sealer
from services.feedback.api.schemas import CitizenPetition, Deadlines, StaffPetition
from services.feedback.domain.categories import classification
from services.feedback.domain.petition import Status


def _deadlines(row: Any) -> Deadlines:
    return Deadlines(
        refuse_due_at=row.refuse_due_at,
        info_due_at=row.info_due_at,
        answer_due_at=row.answer_due_at,
        publish_due_at=row.publish_due_at,
    )


def citizen_view(row: Any) -> CitizenPetition:
    published = row.status == Status.PUBLISHED
    asking = row.status == Status.MORE_INFO_REQUESTED
    return CitizenPetition(
        petition_id=row.petition_id,
        unit_code=row.unit_code,
        category=row.category,
        title=row.title,
        status=row.status,
        received_at=row.received_at,
        deadlines=_deadlines(row),
        question=row.question if asking else None,
        # The answer is the unit's until it is published.
        answer=row.answer if published else None,
        published_at=row.published_at,
        refused_at=row.refused_at,
        refusal_reason=row.refusal_reason if row.status == Status.REFUSED else None,
        reaction=row.reaction,
    )


def staff_view(row: Any, sealer: Sealer) -> StaffPetition:
    state = repository.state_of(row)
    return StaffPetition(
        petition_id=row.petition_id,
        unit_code=row.unit_code,
        dossier_id=row.dossier_id,
        category=row.category,
        classification=classification(row.category),
        title=row.title,
        content=row.content,
        contact=sealer.open(row.contact_encrypted) if row.contact_encrypted else None,
        status=row.status,
        received_at=row.received_at,
        clock_started_at=row.clock_started_at,
        deadlines=_deadlines(row),
        refused_at=row.refused_at,
        refusal_reason=row.refusal_reason,
        info_requested_at=row.info_requested_at,
        question=row.question,
        supplement=row.supplement,
        answered_at=row.answered_at,
        answer=row.answer,
        published_at=row.published_at,
        handled_on_time=state.handled_on_time,
        transfers=row.transfers,
        likes=state.likes,
        dislikes=state.dislikes,
        petitioned_again=row.petitioned_again,
        version=row.version,
    )
