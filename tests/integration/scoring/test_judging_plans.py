"""A judging chunk reads its dossiers' rows by key, whatever the tables' statistics say.

Without statistics (a bulk load not analysed yet; a server running without autovacuum, as the
development machine's) the planner took ``dossier_id = ANY(...)`` for "every row" and scanned
the whole event table for each chunk of 1,000 dossiers, a cost that grows with the history.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.scoring.adapters.repository import PETITIONS_NAMING, RATINGS_OF
from services.scoring.application.judging import _EVENTS, _KEYED_ONLY, _OLD
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_dossier_events
from shared.db import driver_connection

from .helpers import load_reference
from .scenario import NOW, _received

pytestmark = pytest.mark.integration


async def test_chunk_reads_use_the_dossier_id_indexes(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    ids = [f"PLAN-{i}" for i in range(50)]
    async with app.uow() as uow:
        await apply_dossier_events([_received(5, i, "P01", "online") for i in ids], uow, now=NOW)
    async with app.uow() as uow:
        conn: Any = await driver_connection(uow.session)
        # Statistics of tiny tables: a scan looks cheapest, as it does for a table never analysed.
        await conn.execute("ANALYZE scoring.dossier_event, scoring.contribution, scoring.rating, scoring.petition")
        await conn.execute(_KEYED_ONLY)
        for sql, index in (
            (_EVENTS, "ix_dossier_event_dossier_id"),
            (_OLD, "ix_contribution_dossier_id"),
            (RATINGS_OF, "pk_rating"),  # 5.4: the chunk's ratings
            (PETITIONS_NAMING, "ix_petition_dossier_id"),  # and the petitions naming its dossiers
        ):
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, ids))
            assert "Seq Scan" not in plan, plan
            assert index in plan, plan
