"""The simulated world: offices, officers, traits, all from the seed."""

from __future__ import annotations

import re
from collections import Counter

from sim.world import World, build_world, load_procedures


def test_about_350_local_offices_at_least_three_a_province(world: World) -> None:
    locals_ = world.local_offices()
    assert 320 <= len(locals_) <= 400
    per_province = Counter(o.parent_code for o in locals_)
    assert min(per_province.values()) >= 3
    assert per_province["P27"] > per_province["P03"]  # Hồ Chí Minh City has more than Lai Châu


def test_codes_names_and_officers(world: World) -> None:
    o = world.office("P01.L03")
    assert o.name == "Thuế cơ sở 3 Hà Nội"
    assert o.parent_code == "P01" and o.source == "tms-p01"
    assert all(re.fullmatch(r"P01\.L03\.O\d{2}", x) for x in o.officers)
    assert world.sources["tms-p01"] == ["P01"]


def test_procedures_loaded_from_reference_csv() -> None:
    procs = {p.code: p for p in load_procedures()}
    assert procs["T.KT.01"].time_limit_wd is None and procs["T.KT.01"].has_fee
    assert procs["T.HT.02"].time_limit_wd == 40 and procs["T.HT.02"].levels == ("province",)


def test_same_seed_same_world_different_seed_different_world(world: World) -> None:
    again, other = build_world(7), build_world(8)
    assert [(o.code, o.weight, o.traits()) for o in again.offices] == [
        (o.code, o.weight, o.traits()) for o in world.offices
    ]
    assert [(o.weight, o.traits()) for o in other.offices] != [(o.weight, o.traits()) for o in world.offices]


def test_traits_are_present_but_not_everywhere(world: World) -> None:
    traits = Counter(t for o in world.offices for t in o.traits())
    for name in ("backlog_prone", "slow_digitise", "low_online", "sync_lag", "small"):
        assert 0 < traits[name] < len(world.offices) / 3
