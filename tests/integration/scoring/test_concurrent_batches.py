"""Two messages about one dossier applied at the same time still converge to its full state.

Consumers run several deliveries at once (prefetch, several workers). If each transaction
refolded the dossier from the events visible in its own snapshot, the one that commits last
could write a fold that lacks the other's events: the dossier would stay open forever.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from services.scoring.adapters.tables import dossier
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_dossier_events

from .helpers import load_reference
from .scenario import NOW, _ev, _received

pytestmark = pytest.mark.integration


async def test_concurrent_batches_for_one_dossier_converge(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    first_batch = [_received(5, "RACE-1", "P01", "online")]
    second_batch = [_ev("completed", 7, "RACE-1", outcome="approved", result_digitized=True)]

    first = app.uow()
    await first.__aenter__()
    await apply_dossier_events(first_batch, first, now=NOW)

    async def second() -> None:
        async with app.uow() as uow:
            await apply_dossier_events(second_batch, uow, now=NOW)

    racing = asyncio.create_task(second())
    await asyncio.sleep(0.5)  # the second transaction runs while the first is still open
    await first.__aexit__(None, None, None)
    await asyncio.wait_for(racing, 10)

    async with app.sessions() as session:
        row = (await session.execute(select(dossier).where(dossier.c.dossier_id == "RACE-1"))).one()
    assert row.finished_at is not None, "the completed event was lost to a concurrent refold"
