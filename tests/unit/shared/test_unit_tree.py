"""The unit tree's one rule for who covers whom and who took over a closed unit."""

from __future__ import annotations

from dataclasses import dataclass

from shared.unit_tree import covers, subtree, successor_target


@dataclass(frozen=True)
class Unit:
    successor_code: str | None


PARENTS = {"CT": None, "P01": "CT", "P01.L01": "P01", "P02": "CT"}


def test_a_unit_covers_its_subtree_only() -> None:
    assert covers(PARENTS, ["P01"], "P01.L01") and not covers(PARENTS, ["P02"], "P01.L01")
    assert subtree(PARENTS, "P01") == {"P01", "P01.L01"}


def test_a_closed_unit_hands_over_along_its_successors_to_the_first_valid_one() -> None:
    def units(**successors: str | None) -> dict[str, Unit]:
        return {code.replace("_", "."): Unit(successor) for code, successor in successors.items()}

    tree = units(OLD_A="OLD.B", OLD_B="P01", P01=None, LOOP_1="LOOP.2", LOOP_2="LOOP.1")

    def valid(u: Unit) -> bool:
        return u is tree["P01"]

    assert successor_target("P01", tree, valid) == "P01"  # valid: itself
    assert successor_target("OLD.A", tree, valid) == "P01"  # two hops
    assert successor_target("LOOP.1", tree, valid) is None  # a cycle in bad data ends
    assert successor_target("UNKNOWN", tree, valid) is None
    assert successor_target("OLD.A", units(OLD_A=None), valid) is None  # no successor
