"""Petitions (phản ánh, kiến nghị) still waiting on the office, as a unit page lists them.

A petition waits while it is received or waiting for more information (its deadline is the
answer's), or answered but not yet published (its deadline is the publication's). It is
overdue once now is past that deadline: deadlines are ends of working days, and on time means
at or before them (feedback computes them; ``PetitionChanged`` carries them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

OPEN = ("received", "more_info_requested")
UNPUBLISHED = ("answered",)
PENDING = OPEN + UNPUBLISHED


@dataclass(frozen=True)
class PetitionLine:
    petition_id: str
    unit_code: str
    category: str
    classification: str
    status: str
    received_at: datetime
    due_at: datetime | None  # the answer's deadline, or the publication's once answered
    overdue: bool


def pending(rows: Iterable[Any], now: datetime) -> list[PetitionLine]:
    """The waiting petitions, overdue first, then by deadline."""
    lines = []
    for r in rows:
        if r.status not in PENDING:
            continue
        due = r.answer_due_at if r.status in OPEN else r.publish_due_at
        lines.append(
            PetitionLine(
                petition_id=r.petition_id,
                unit_code=r.unit_code,
                category=r.category,
                classification=r.classification,
                status=r.status,
                received_at=r.received_at,
                due_at=due,
                overdue=due is not None and now > due,
            )
        )
    return sorted(lines, key=lambda p: (not p.overdue, p.due_at or now, p.petition_id))
