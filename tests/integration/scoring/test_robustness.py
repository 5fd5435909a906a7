"""One bad dossier never stops the country's scores; a far-past date never starts a storm.

A dossier whose facts the domain cannot judge (a due time in year 1 overflows the calendar)
is set aside — stored as unjudgeable with its reason, counted in a metric — while every other
dossier is judged and every period refreshed; the recompute check skips it the same way. A
dossier dated 1990 touches only the periods since the history floor.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.scoring.adapters.tables import contribution, dossier
from services.scoring.application.recompute import live_periods, recompute_and_compare
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.domain.period_labels import history_floor
from shared.contracts import RawEvent
from shared.metrics import DOSSIERS_UNJUDGEABLE

from .helpers import apply_batches, load_reference, score_table
from .scenario import NOW, PROCEDURE, _received, dossier_events

pytestmark = pytest.mark.integration


def poison() -> list[RawEvent]:
    bad = _received(6, "POISON-1", "P01", "online")
    return [bad.model_copy(update={"data": {**bad.data, "due_at": "0001-01-01T00:00:00+07:00"}})]


def unjudgeable_count() -> float:
    return DOSSIERS_UNJUDGEABLE.labels(reason="OverflowError")._value.get()


async def test_an_unjudgeable_dossier_is_set_aside_not_fatal(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    before = unjudgeable_count()
    events = [*dossier_events(), *poison()]
    await apply_batches(clean, [events], NOW)
    done = await refresh_once(clean, now=NOW)
    assert {"2026-10", "2026-Q4", "2026"} <= set(done)
    rows = await score_table(clean, "2026-10")
    assert rows[("tax-2025", "P01")]["dossiers"] == 4  # the four good ones; the poison counts nowhere
    async with clean.sessions() as s:
        row = (await s.execute(select(dossier).where(dossier.c.dossier_id == "POISON-1"))).mappings().one()
        left = await s.scalar(select(contribution.c.period).where(contribution.c.dossier_id == "POISON-1"))
    assert row["recheck_at"] is None and "OverflowError" in (row["unjudgeable"] or "")
    assert left is None
    assert unjudgeable_count() == before + 1
    assert await refresh_once(clean, now=NOW) == []  # set aside once, not retried every tick
    async with clean.sessions() as s:
        diffs = await recompute_and_compare(
            s,
            events=[PROCEDURE, *events],
            periods=await live_periods(s),
            methodologies=list(clean.methodologies.values()),
            calendar=clean.calendar,
        )
    assert diffs == []


async def test_a_far_past_dossier_touches_only_recent_periods(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    old = _received(6, "OLD-1990", "P01", "counter")
    old = old.model_copy(update={"occurred_at": "1990-01-05T09:00:00+07:00"})
    await apply_batches(clean, [[*dossier_events(), old]], NOW)
    done = await refresh_once(clean, now=NOW)
    floor = history_floor(NOW)
    assert {"2026-10", "2026-Q4", "2026"} <= set(done)
    assert all(label >= f"{floor.year:04d}" for label in done), done
    assert len(done) <= 40  # 24 months, their quarters and years — not 400 months since 1990
    async with clean.sessions() as s:
        periods = set(await s.scalars(select(contribution.c.period).where(contribution.c.dossier_id == "OLD-1990")))
    assert "1990-01" not in periods and "2026-10" in periods  # still open: it counts where it is handled
