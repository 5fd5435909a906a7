"""A unit (cơ quan thuế) as ingest knows it; who covers whom is shared.unit_tree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    level: str
    parent_code: str | None
    valid_from: date | None = None
    valid_to: date | None = None
    successor_code: str | None = None

    def exists_on(self, day: date) -> bool:
        """Whether the unit existed on ``day`` (its validity interval, both ends included)."""
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)
