"""Scoring every office of a refresh, in process: CPU per refresh of N units × both methodologies.

What a refresh does for each unit whose counts moved — indicator points (their figures only, as
a refresh stores them; memoised), the stored breakdown's figures, their digest — on synthetic
counts. Every office's counts move before each refresh: all of its computations by default (the
worst case: nothing repeats), or ``--moving K`` of them (a live stream: an event moves a few of an
office's counters between two refreshes, and indicators whose counts did not move are not scored
again). No database, no broker: the figure is the domain's CPU, the part of a month's refresh that
grows with the number of offices.

Then the same refresh's announcement (``scoring_service.announcements``): every office moved, so
every unit × methodology is compared with its stored row and built into ``scores-updated`` bodies.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from services.scoring.application.scoring_service import announcements
from services.scoring.domain import breakdown, parse_period
from services.scoring.domain.definitions import DEFINITIONS
from services.scoring.domain.engine import Evaluation, UnitRow, payload_digest, score_period
from services.scoring.domain.indicators import Count
from services.scoring.domain.methodology import Methodology, load_builtin
from services.scoring.domain.scoring import central_inheritance, score


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./sqi bench units", description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=420, help="offices scored per refresh (≈ the country)")
    parser.add_argument("--rounds", type=int, default=5, help="timed refreshes")
    parser.add_argument(
        "--moving", type=int, default=0, help="computations whose counts move per office per refresh (0: all)"
    )
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one refresh")
    parser.add_argument(
        "--collector",
        type=int,
        default=0,
        metavar="N",
        help="also N live refreshes of a month, quarter and year through score_period (its memo), "
        "and the time spent in the cyclic garbage collector",
    )
    args = parser.parse_args(argv)
    rng = random.Random(1)
    methodologies = [load_builtin("tax-2025"), load_builtin("portal-766")]

    def count() -> Count:
        d = rng.randint(0, 400)
        return Count(rng.randint(0, d) if d else 0, d)

    def counts() -> dict[str, Count]:
        return {basis: count() for basis in DEFINITIONS}

    bases = list(DEFINITIONS)

    def move(office: dict[str, Count]) -> None:
        for basis in rng.sample(bases, args.moving) if args.moving else bases:
            office[basis] = count()

    offices = [counts() for _ in range(args.units)]
    unit = UnitRow(code="P01.L01", name="Thuế cơ sở 1", level="local", parent_code="P01")
    inherited = {m.id: central_inheritance(score(m, offices[0], words=False)) for m in methodologies}

    def refresh() -> None:
        for c in offices:
            move(c)
            for m in methodologies:
                s = score(m, c, inherited[m.id], words=False)  # as a refresh scores: the figures only
                payload_digest(breakdown.stored(s, unit.name, unit.level, unit.parent_code))

    refresh()  # warm
    cpu = time.process_time()
    for _ in range(args.rounds):
        refresh()
    per = (time.process_time() - cpu) / args.rounds
    n = args.units * len(methodologies)
    each = per / n * 1e6
    moving = f"{args.moving} of {len(bases)}" if args.moving else f"all {len(bases)}"
    print(
        f"bench units: {per * 1000:.1f} ms of CPU per refresh of {n} unit-methodologies ({each:.0f} µs each;"
        f" {moving} computations moving per office)"
    )
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(refresh)
        pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    if args.collector:
        collector(args.collector, methodologies, counts, args.units, move)

    # The refresh's rows as compute_period holds them (new) and as it read them (old: every
    # office moved, by one hundredth and a different digest), methodology → unit → row.
    codes = [f"P{k % 35 + 1:02d}.L{k // 35:02d}" for k in range(args.units)]
    new: dict[str, dict[str, dict[str, Any]]] = {}
    old: dict[str, dict[str, dict[str, Any]]] = {}
    for m in methodologies:
        for code, c in zip(codes, offices, strict=True):
            s = score(m, c, inherited[m.id], words=False)
            payload = breakdown.stored(s, unit.name, unit.level, unit.parent_code)
            digest = payload_digest(payload)
            row = {"total": s.total, "grade": s.grade, "rank": 3, "rank_delta": 1, "dossiers": s.dossiers}
            row |= {"provisional": s.provisional, "digest": digest, "payload": payload}
            new.setdefault(m.id, {})[code] = row
            old.setdefault(m.id, {})[code] = row | {"total": s.total + Decimal("0.01"), "digest": digest[::-1]}
    now = datetime(2026, 11, 30, 6, tzinfo=UTC)

    def announce() -> None:
        announcements("2026-11", old, new, now)

    announce()  # warm
    cpu = time.process_time()
    for _ in range(args.rounds):
        announce()
    per = (time.process_time() - cpu) / args.rounds
    print(f"bench units: {per * 1000:.1f} ms of CPU per announcement of the {n} ({per / n * 1e6:.1f} µs each)")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(announce)
        pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    return 0


def collector(
    refreshes: int,
    methodologies: list[Methodology],
    counts: Callable[[], dict[str, Count]],
    offices: int,
    move: Callable[[dict[str, Count]], None],
) -> None:
    """Refreshes as the live loop makes them — the running month, quarter and year, each with its
    own counts, every office's moved before each refresh — through ``score_period`` and its memo,
    with the collector timed (``gc.callbacks``): what a memo that keeps objects costs beyond
    building them."""
    gc.collect()
    gc.freeze()  # the start-up heap, as every process freezes it
    codes = [f"P{k:03d}" for k in range(offices)]
    units = {code: UnitRow(code=code, name="Thuế", level="local", parent_code=None) for code in codes}
    periods = {label: [counts() for _ in codes] for label in ("2026-11", "2026-Q4", "2026")}
    paused: list[tuple[int, float]] = []
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        # CPU time, not wall time: a busy machine must not inflate what the collector cost.
        if phase == "start":
            started[0] = time.process_time()
        else:
            paused.append((info["generation"], time.process_time() - started[0]))

    gc.callbacks.append(timed)
    cpu = time.process_time()
    try:
        for _ in range(refreshes):
            for label, period_counts in periods.items():
                for c in period_counts:
                    move(c)
                period = parse_period(label)
                by_unit = {code: dict(c) for code, c in zip(codes, period_counts, strict=True)}
                ev = Evaluation(period, period.end, units, {}, {}, {}, by_unit | {"__catalogue__": period_counts[0]})
                for m in methodologies:
                    score_period(ev, m)
    finally:
        gc.callbacks.remove(timed)
    cpu = time.process_time() - cpu
    in_gc = sum(t for _, t in paused)
    full = [t for g, t in paused if g == 2]
    print(
        f"bench units --collector: {refreshes} refreshes × 3 periods, {cpu:.2f} s of CPU, "
        f"{in_gc:.2f} s in the collector ({in_gc / cpu:.0%}), {len(full)} full collections, "
        f"longest {max((t for _, t in paused), default=0) * 1000:.0f} ms of CPU, "
        f"{len(gc.get_objects()):,} objects tracked"
    )
