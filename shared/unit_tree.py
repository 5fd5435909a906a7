"""The unit tree (cây đơn vị): who covers whom. Every service keeps its own copy of the tree;
this is the one rule for reading it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def covers(parents: Mapping[str, str | None], roots: Iterable[str], code: str) -> bool:
    """True when ``code`` is one of ``roots`` or lies in the subtree of one of them.

    ``parents`` maps each unit code to its parent's code (None at the top); a cycle in bad
    data ends the walk instead of looping.
    """
    allowed = set(roots)
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current not in seen:
        if current in allowed:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


def subtree(parents: Mapping[str, str | None], root: str) -> set[str]:
    """``root`` and every unit below it."""
    return {code for code in parents if covers(parents, [root], code)} | {root}
