"""The unit tree (cây đơn vị) as ingest knows it: which codes exist, and who covers whom."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    level: str
    parent_code: str | None


def covers(tree: Mapping[str, Unit], roots: Iterable[str], code: str) -> bool:
    """True when ``code`` is one of ``roots`` or lies in the subtree of one of them."""
    allowed = set(roots)
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current not in seen:
        if current in allowed:
            return True
        seen.add(current)
        unit = tree.get(current)
        current = unit.parent_code if unit else None
    return False
