"""Applying scripted batches through the real handlers, and reading the score rows back."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select, text

from services.scoring.adapters.repository import load_procedures
from services.scoring.adapters.tables import score
from services.scoring.adapters.tallies import drift
from services.scoring.api.app import create_app
from services.scoring.api.routes import get_now
from services.scoring.application.judging import judge_due, judge_flagged_chunk
from services.scoring.application.recompute import live_periods, recompute_and_compare
from services.scoring.application.scoring_service import compute_period
from services.scoring.bootstrap import Scoring
from services.scoring.domain import parse_period
from services.scoring.handlers.messages import apply_dossier_events, apply_procedure_events, apply_units
from shared.contracts import RawEvent
from shared.contracts.feedback import RatingSubmitted
from shared.db import driver_connection
from shared.identity import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal

from .scenario import NOW, PROCEDURE, UNITS, _at


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


def pin_clock(api: FastAPI, start: datetime) -> FastAPI:
    """The API's clock (``get_now``) from ``start``, a second later at each request. Pinned: the
    routes refuse what is before the history floor or in the future, and a fixed scenario read
    through the real clock would be refused once the floor passes it. Moving: an answer computed
    again is told from one kept by its stamp."""
    ticks = itertools.count()

    async def now() -> datetime:
        return start + timedelta(seconds=next(ticks))

    api.dependency_overrides[get_now] = now
    return api


async def judge_all(app: Scoring, now: datetime) -> None:
    """Judge every flagged and every due dossier, in one transaction."""
    async with app.uow() as uow:
        await judge_due(uow.session, now=now, calendar=app.calendar, procedures=await load_procedures(uow.session))


async def judge_a_flagged_chunk(app: Scoring, now: datetime) -> int:
    """One chunk of flagged dossiers judged and committed (a judging lane's step); how many."""
    async with app.uow() as uow:
        procedures = await load_procedures(uow.session)
        return await judge_flagged_chunk(uow.session, now=now, calendar=app.calendar, procedures=procedures)


def dissatisfied(dossier_id: str, n: int = 1, *, day: int = 9) -> RatingSubmitted:
    """A citizen's dissatisfied rating of the scenario's ``dossier_id`` (of P01), given on ``day`` October."""
    return RatingSubmitted(
        rating_id=f"r-{dossier_id}-{n}",
        dossier_id=dossier_id,
        unit_code="P01",
        level="dissatisfied",
        criteria={"conduct": 1},
        origin="citizen",
        rated_at=datetime.fromisoformat(_at(day)),
        replaced=False,
        current=True,
    )


_WAITING = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"


async def until_waiting(app: Scoring, n: int, *tasks: asyncio.Task[Any], done: asyncio.Event | None = None) -> None:
    """Until ``n`` transactions of this database wait for a lock, or one of ``tasks`` finished (or
    ``done`` is set): a staged race's next step."""
    deadline = asyncio.get_running_loop().time() + 30
    while not any(t.done() for t in tasks) and not (done and done.is_set()):
        async with app.sessions() as session:
            if await session.scalar(text(_WAITING)) >= n:
                return
        assert asyncio.get_running_loop().time() < deadline, "neither finished nor waiting"
        await asyncio.sleep(0.02)


def staff_headers(app: Scoring, role: str = "admin", unit: str = "CT") -> dict[str, str]:
    """The headers the gateway forwards for a staff member of ``unit`` with ``role``."""
    principal = Principal(kind="staff", roles=(role,), unit=unit, sub="a")
    return {PRINCIPAL_HEADER: encode_principal(principal), INTERNAL_TOKEN_HEADER: app.settings.internal_token}


class CommitsAfterFirstCall:
    """A refresher loader wrapped so that its first call, once it has loaded, commits ``commit()``
    (its own transaction): a change committed just after a judging step read its copy."""

    def __init__(self, load: Callable[[Any], Awaitable[Any]], commit: Callable[[], Awaitable[None]]) -> None:
        self.load, self.commit, self.done = load, commit, False

    async def __call__(self, session: Any) -> Any:
        loaded = await self.load(session)
        if not self.done:
            self.done = True
            await self.commit()
        return loaded


async def catalogue_change(app: Scoring, *events: RawEvent) -> None:
    """``events`` (procedure upserts) applied and committed."""
    async with app.uow() as uow:
        await apply_procedure_events(list(events), uow, now=NOW)
