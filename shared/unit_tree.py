"""The unit tree (cây đơn vị): who covers whom. Every service keeps its own copy of the tree;
this is the one rule for reading it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, TypeVar


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


class Succeeded(Protocol):
    """A unit copy's row as far as succession goes (each service has its own row type)."""

    @property
    def successor_code(self) -> str | None: ...


U = TypeVar("U", bound=Succeeded)


def successor_target(code: str, units: Mapping[str, U], valid: Callable[[U], bool]) -> str | None:
    """The unit ``code`` hands over to: itself when ``valid``, else the first valid unit along its
    successors (a department closed in a reorganisation → the office that took it over).

    None when the chain ends before a valid unit: no successor, an unknown unit, or a cycle in bad
    data.
    """
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current not in seen:
        unit = units.get(current)
        if unit is None:
            return None
        if valid(unit):
            return current
        seen.add(current)
        current = unit.successor_code
    return None
