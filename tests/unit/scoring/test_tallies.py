"""Counter differences equal the sums they stand for."""

from __future__ import annotations

import random

from services.scoring.adapters.tallies import (
    PROCEDURE_BITS,
    SUMS,
    UNIT_COLUMNS,
    H,
    deltas,
    shortfall_condition,
    shortfall_flags,
)
from services.scoring.domain.contributions import Contribution, F
from services.scoring.domain.indicators import Count, tally_counts


def _random_rows(rng: random.Random, n: int) -> list[Contribution]:
    return [
        Contribution(
            f"D{i}",
            rng.choice(["2026-10", "2026-Q4"]),
            rng.choice(["P01", "P02"]),
            rng.choice(["T1", "T2", "T3"]),
            rng.getrandbits(len(F)),  # every stored bit, 5.4's exception (bit 18) included
            rng.choice([None, 0, 3, 7]),
        )
        for i in range(n)
    ]


def test_deltas_of_additions_are_the_sums() -> None:
    rows = _random_rows(random.Random(7), 500)
    units, procs = deltas([], rows)
    for (period, unit), got in units.items():
        mine = [c for c in rows if (c.period, c.unit_code) == (period, unit)]
        want = [sum(1 for c in mine if c.flags & m == m) for m in SUMS.values()]
        ended = [c for c in mine if c.flags & H and c.handling_days is not None]
        want += [len(ended), sum(c.handling_days or 0 for c in ended)]
        assert dict(zip(UNIT_COLUMNS, got, strict=True)) == dict(zip(UNIT_COLUMNS, want, strict=True))
    for (period, unit, proc), got in procs.items():
        mine = [c for c in rows if (c.period, c.unit_code, c.procedure_code) == (period, unit, proc) and c.flags & H]
        assert got == [len(mine), *(sum(1 for c in mine if c.flags & b) for b in PROCEDURE_BITS.values())]


def test_replacing_rows_by_themselves_moves_nothing() -> None:
    rows = _random_rows(random.Random(8), 200)
    assert deltas(rows, rows) == ({}, {})
    half = rows[:100]
    units, _ = deltas(rows, half)  # removing the other half: negative counts of exactly it
    back, _ = deltas([], rows[100:])
    assert {k: [-x for x in v] for k, v in back.items()} == units


def test_shortfall_conditions_derive_from_the_ratio_declaration() -> None:
    # In the denominator, not in the numerator: the domain's reasons (verdict._shortfalls).
    hd, rc = int(F.HANDLED), int(F.RECEIVED)
    assert shortfall_flags("2.1") == (hd, int(F.ON_TIME))
    assert shortfall_flags("1.4") == (hd, int(F.SYNCED))
    assert shortfall_flags("3.2") == (hd, int(F.DIGITISED_OK))
    assert shortfall_flags("4.3") == (rc, int(F.ONLINE_COUNTED))
    assert shortfall_flags("4.6") == (rc | F.FEE_DOSSIER, int(F.FEE_DOSSIER_PAID))
    assert shortfall_flags("4.2") is None  # a procedure-level indicator: no dossier list
    assert shortfall_condition("2.1", "c") == f"c.flags & {hd} = {hd} AND c.flags & {int(F.ON_TIME)} = 0"


def test_satisfaction_is_on_time_minus_its_feedback_exceptions() -> None:
    """5.4: handled, and overdue or excepted by feedback, costs points; the numerator is the
    on-time counter minus the on-time contributions carrying the exception."""
    hd, ok, ex = int(F.HANDLED), int(F.ON_TIME), int(F.UNSATISFIED_BY_FEEDBACK)
    assert SUMS["on_time_excepted"] == hd | ok | ex
    assert (
        shortfall_condition("5.4", "c")
        == f"c.flags & {hd} = {hd} AND (c.flags & {ok} <> {ok} OR c.flags & {ex} = {ex})"
    )
    rows = [
        Contribution(f"D{i}", "2026-10", "P01", "T1", f, None)
        for i, f in enumerate((hd | ok, hd | ok | ex, hd | ex, hd))
    ]
    units, procs = deltas([], rows)
    sums = dict(zip(UNIT_COLUMNS, units[("2026-10", "P01")], strict=True))
    flags = {code: hd for (_, _, code) in procs}
    assert tally_counts(sums, flags, {}, {"local"})["5.4"] == Count(1, 4)
