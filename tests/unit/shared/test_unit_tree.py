"""The unit tree's one rule for who covers whom and who took over a closed unit."""

from __future__ import annotations

from shared.unit_tree import covers, subtree, successor_target

PARENTS = {"CT": None, "P01": "CT", "P01.L01": "P01", "P02": "CT"}


def test_a_unit_covers_its_subtree_only() -> None:
    assert covers(PARENTS, ["P01"], "P01.L01") and not covers(PARENTS, ["P02"], "P01.L01")
    assert subtree(PARENTS, "P01") == {"P01", "P01.L01"}


def test_a_closed_unit_hands_over_along_its_successors_to_the_first_valid_one() -> None:
    successors = {"OLD.A": "OLD.B", "OLD.B": "P01", "P01": None, "LOOP.1": "LOOP.2", "LOOP.2": "LOOP.1"}
    valid = {"P01"}.__contains__
    assert successor_target("P01", successors, valid) == "P01"  # valid: itself
    assert successor_target("OLD.A", successors, valid) == "P01"  # two hops
    assert successor_target("LOOP.1", successors, valid) is None  # a cycle in bad data ends
    assert successor_target("UNKNOWN", successors, valid) is None
    assert successor_target("OLD.A", {"OLD.A": None}, valid) is None  # no successor
