"""A unit (cơ quan thuế) as ingest knows it; who covers whom is shared.unit_tree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    level: str
    parent_code: str | None
