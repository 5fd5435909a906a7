"""Shared fixtures: one small, fast world and run (scale 0.02, October 2026)."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from sim.clock import DAY, day_of
from sim.generate import Anomalies, Config, Generator
from sim.world import World, build_world

OCT_START = day_of(date(2026, 10, 1)) * DAY
OCT_END = day_of(date(2026, 11, 1)) * DAY - 1


def run(
    seed: int = 7,
    scale: float = 0.02,
    *,
    start: int = OCT_START,
    end: int = OCT_END,
    feedback: bool = False,
    anomalies: Anomalies | None = None,
) -> tuple[Generator, list[bytes]]:
    world = build_world(seed)
    cfg = Config(
        seed=seed,
        t_start=start,
        t_end=end,
        scale=scale,
        feedback=feedback,
        anomalies=anomalies if anomalies is not None else Anomalies(),
    )
    gen = Generator(world, cfg)
    return gen, [line for _, line in gen.lines()]


@pytest.fixture(scope="session")
def world() -> World:
    return build_world(7)


@pytest.fixture(scope="session")
def october() -> tuple[Generator, list[dict]]:
    gen, lines = run(feedback=True, anomalies=Anomalies(rating_burst=12, reopen_rate=0.02, silent_source=True))
    return gen, [orjson.loads(x) for x in lines]
