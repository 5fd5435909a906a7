"""Applying scripted batches through the real handlers, and reading the score rows back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from services.scoring.adapters.tables import score
from services.scoring.adapters.tallies import drift
from services.scoring.api.app import create_app
from services.scoring.application.recompute import live_periods, recompute_and_compare
from services.scoring.application.scoring_service import compute_period
from services.scoring.bootstrap import Scoring
from services.scoring.domain import parse_period
from services.scoring.handlers.messages import apply_dossier_events, apply_procedure_events, apply_units
from shared.contracts import RawEvent
from shared.db import driver_connection

from .scenario import PROCEDURE, UNITS


async def load_reference(app: Scoring, now: datetime) -> None:
    async with app.uow() as uow:
        await apply_units(UNITS, uow, now=now)
        await apply_procedure_events([PROCEDURE], uow, now=now)


async def no_differences(app: Scoring, events: list[RawEvent]) -> None:
    """The counters equal the sums over the contributions, and every stored period's scores a
    recompute from ``events`` (with the scenario's catalogue) and the stored ratings and petitions."""
    async with app.sessions() as s:
        assert await drift(await driver_connection(s)) == []
        diffs = await recompute_and_compare(
            s,
            events=[PROCEDURE, *events],
            periods=await live_periods(s),
            methodologies=list(app.methodologies.values()),
            calendar=app.calendar,
        )
    assert [str(d) for d in diffs] == []


async def apply_batches(app: Scoring, batches: list[list[RawEvent]], now: datetime) -> None:
    for batch in batches:
        async with app.uow() as uow:
            await apply_dossier_events(batch, uow, now=now)


async def compute(app: Scoring, label: str, now: datetime) -> dict[str, list[str]]:
    async with app.uow() as uow:
        return await compute_period(
            uow,
            period=parse_period(label),
            methodologies=list(app.methodologies.values()),
            now=now,
            calendar=app.calendar,
        )


async def score_table(app: Scoring, label: str) -> dict[tuple[str, str], dict[str, Any]]:
    async with app.sessions() as s:
        rows = (await s.execute(select(score).where(score.c.period == label))).mappings().all()
    return {(r["methodology"], r["unit_code"]): {k: v for k, v in r.items() if k != "computed_at"} for r in rows}


def api_reading_at_once(app: Scoring) -> FastAPI:
    """The scoring API for tests that read right after a refresh at a fixed instant: every request
    reads the period's state (the 0.2 s reuse window would otherwise serve the state read just
    before the refresh when the machine is fast; test_read_cache.py covers that window)."""
    api = create_app(app)
    api.state.read_cache.states.seconds = 0
    return api
