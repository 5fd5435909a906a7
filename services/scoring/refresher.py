"""The background refresher: recomputes dirty periods (kỳ cần tính lại), at most once a second.

Handlers mark periods dirty in their own transaction (locking the mark). Each tick the refresher
claims every dirty period one at a time — ``DELETE … RETURNING`` in the same transaction as the
recomputation — so many batches arriving within a tick cost one recomputation (coalescing), and
a batch committed during a recomputation re-marks the period for the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import delete, select

from services.scoring.adapters.tables import dirty_period
from services.scoring.bootstrap import Scoring
from services.scoring.domain import parse_period
from services.scoring.scoring_service import compute_period

log = logging.getLogger(__name__)


async def refresh_once(app: Scoring, *, now: datetime | None = None) -> list[str]:
    """Recompute every period currently marked dirty; returns the labels done."""
    async with app.sessions() as session:
        labels = sorted((await session.execute(select(dirty_period.c.period))).scalars().all())
    done: list[str] = []
    for label in labels:
        async with app.uow() as uow:
            claimed = await uow.session.execute(
                delete(dirty_period).where(dirty_period.c.period == label).returning(dirty_period.c.period)
            )
            if claimed.first() is None:
                continue
            try:
                period = parse_period(label)
            except ValueError:
                log.warning("dropping unparseable dirty period", extra={"period": label})
                continue
            await compute_period(
                uow,
                period=period,
                methodologies=list(app.methodologies.values()),
                now=now or datetime.now(UTC),
                calendar=app.calendar,
            )
        done.append(label)
    return done


def make_refresher(app: Scoring) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def refresher(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await refresh_once(app)
                if done:
                    log.info("scores refreshed", extra={"periods": done})
            except Exception:
                log.exception("refresh failed; retrying next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=app.settings.scoring_refresh_seconds)

    return refresher
