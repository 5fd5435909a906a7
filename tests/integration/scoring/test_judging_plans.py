"""Judging's chunks, and the flags they take, read their rows by key, whatever the tables'
statistics (or a cached plan) say.

Without statistics (a bulk load not analysed yet; a server running without autovacuum, as the
development machine's) the planner took ``dossier_id = ANY(...)`` for "every row" and scanned
the whole event table for each chunk of 1,000 dossiers, a cost that grows with the history.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from services.scoring.adapters.dossier_flags import PICK_FROM_START, TAKE, raise_flags
from services.scoring.adapters.repository import PETITIONS_NAMING, RATINGS_OF
from services.scoring.adapters.tables import KEYED_ONLY
from services.scoring.application.judging import _EVENTS, _OLD
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_dossier_events
from shared.db import driver_connection

from ..plans import node_loops
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
        await conn.execute(KEYED_ONLY)
        for sql, index in (
            (_EVENTS, "ix_dossier_event_dossier_id"),
            (_OLD, "ix_contribution_dossier_id"),
            (RATINGS_OF, "pk_rating"),  # 5.4: the chunk's ratings
            (PETITIONS_NAMING, "ix_petition_dossier_id"),  # and the petitions naming its dossiers
        ):
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, ids))
            assert "Seq Scan" not in plan, plan
            assert index in plan, plan


async def test_judging_takes_its_flags_in_one_pass_whatever_plan_is_cached(clean: Scoring) -> None:
    """Session 12's stall: a prepared statement's generic plan made while the flag table was empty
    (VACUUM truncates a drained queue table to no pages) ran the locking sub-select once per flag
    — 62 s for 8,835 flags, every consumer waiting behind its locks. Made the same way here for
    the statement a judging chunk takes its flags with, the plan runs each of its nodes once, and
    takes no more flags than asked."""
    conn = await asyncpg.connect(clean.settings.asyncpg_dsn)
    try:
        await conn.execute("VACUUM ANALYZE scoring.dossier_flag")  # drained: no pages, no rows
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE pick(timestamptz, int) AS {PICK_FROM_START}")
        await conn.execute(f"PREPARE take(text[], timestamptz) AS {TAKE}")
        async with conn.transaction():
            await conn.execute(KEYED_ONLY)  # as a judging chunk's transaction
            await conn.execute("EXECUTE pick(now(), 1000)")  # the plans, made empty
            await conn.execute("EXECUTE take('{}', now())")
        ids = sorted(f"FLAG-{i:05}" for i in range(3000))
        await raise_flags(conn, ids, [NOW] * len(ids), [None] * len(ids))
        async with conn.transaction():
            await conn.execute(KEYED_ONLY)
            picked = [r[0] for r in await conn.fetch("EXECUTE pick(now(), 1000)")]
            literal = "{" + ",".join(picked) + "}"  # EXECUTE under EXPLAIN takes no parameters
            explained = await conn.fetchval(
                f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE take('{literal}', now())"
            )
        assert all(loops <= 1 for _, loops in node_loops(explained)), node_loops(explained)
        assert await conn.fetchval("SELECT count(*) FROM scoring.dossier_flag") == 2000
    finally:
        await conn.close()
