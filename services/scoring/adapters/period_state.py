"""A period's computation stamps (thời điểm tính của kỳ): when it was last computed, when any of
its score rows last moved, and a version that changes with them (the read cache's key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.scoring.adapters.tables import period_state, period_state_version
from shared.wakeup import wake_after_commit

# What the scoring APIs cache, changed: notified after the commit of every computation (payload
# "period|methodology": the cached states of that period are read again at once,
# services.scoring.api.read_cache) and of every change of reference data — the unit tree, the
# procedure catalogue, a methodology, the calendar (payload REFERENCE_CHANGED: the in-process
# copies reload, application.table_copy).
# One channel, so one LISTEN connection per API process.
CHANNEL = "sqi_scores_computed"
REFERENCE_CHANGED = "reference"  # never a "period|methodology"


@dataclass(frozen=True, slots=True)
class PeriodState:
    computed_at: datetime  # the figures are exact as of this instant (dữ liệu tính đến)
    changed_at: datetime  # the last computation that moved a row
    version: int  # changes whenever a row moves; never repeats


async def record_computation(
    session: AsyncSession, *, period: str, methodology: str, now: datetime, changed: bool
) -> None:
    """Stamp a committed computation of (period, methodology): computed_at always moves; changed_at
    and version only when a score row was written or deleted (or the period is new)."""
    ins = pg_insert(period_state).values(
        period=period,
        methodology=methodology,
        computed_at=now,
        changed_at=now,
        version=period_state_version.next_value(),
    )
    moved = {"changed_at": ins.excluded.changed_at, "version": ins.excluded.version} if changed else {}
    await session.execute(
        ins.on_conflict_do_update(
            index_elements=[period_state.c.period, period_state.c.methodology],
            set_={"computed_at": ins.excluded.computed_at, **moved},
        )
    )
    wake_after_commit(session, CHANNEL, f"{period}|{methodology}")


def announce_reference_change(session: AsyncSession) -> None:
    """Reference data (the unit tree, the catalogue, a methodology, the calendar) changes in
    ``session``'s transaction: the APIs reload their copies once it has committed."""
    wake_after_commit(session, CHANNEL, REFERENCE_CHANGED)


async def read_state(conn: AsyncConnection | AsyncSession, period: str, methodology: str) -> PeriodState | None:
    """One primary-key read; None for a period never computed (a custom range, an unscored month)."""
    stmt = select(period_state.c.computed_at, period_state.c.changed_at, period_state.c.version).where(
        period_state.c.period == period, period_state.c.methodology == methodology
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else PeriodState(row.computed_at, row.changed_at, row.version)
