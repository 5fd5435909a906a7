"""``python -m services.reporting.worker``: score, dossier, procedure and unit consumers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.reporting.bootstrap import SERVICE, Reporting, bootstrap, worker_parts
from services.reporting.handlers.dossier_events import LOCK_DOSSIERS
from services.reporting.handlers.messages import seed_reference
from shared import event_loop
from shared.db import driver_connection
from shared.periodic import run_every
from shared.telemetry import configure_telemetry
from shared.unit_of_work import UnitOfWork
from shared.worker import run_worker

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 3600
# Dossiers dropped per transaction: each is locked as a dossier batch locks it (an advisory lock
# a piece, from the server's shared lock table: a first sweep after a back-fill drops many).
SWEEP_CHUNK = 500

_DUE = "finished_at < $1 AND updated_at < $1"
_PICK = f"SELECT dossier_id FROM reporting.dossier WHERE {_DUE} AND dossier_id > $2 ORDER BY dossier_id LIMIT $3"
# Checked again under the locks: a batch that folded an event meanwhile moved updated_at.
_DROP = f"""
WITH gone AS (
    DELETE FROM reporting.dossier WHERE dossier_id = ANY($2::text[]) AND {_DUE}
    RETURNING dossier_id, GREATEST(finished_at, folded_through) AS through
)
INSERT INTO reporting.dropped_dossier (dossier_id, through, dropped_at)
SELECT dossier_id, through, now() FROM gone
ON CONFLICT (dossier_id) DO UPDATE SET through = GREATEST(dropped_dossier.through, excluded.through),
    dropped_at = excluded.dropped_at
"""
_PURGE = """
WITH purged AS (DELETE FROM reporting.dropped_dossier WHERE dropped_at < $1 RETURNING through)
INSERT INTO reporting.dropped_horizon (id, through) SELECT 1, max(through) FROM purged HAVING count(*) > 0
ON CONFLICT (id) DO UPDATE SET through = GREATEST(dropped_horizon.through, excluded.through)
"""


async def drop_finished_dossiers(app: Reporting, now: datetime) -> int:
    """Finished dossiers are kept a while (a late event must not reopen them), then dropped: a
    while after they finished and after their last event arrived. Not by the finish alone: a
    back-fill of last year stores a completion before its receipt, and a row dropped in between
    came back from the receipt alone, open and overdue for good.

    A dropped dossier leaves a tombstone (``dropped_dossier``, same transaction as the delete):
    dossier batches ignore the events of a tombstoned id. Tombstones are purged
    ``reporting_dropped_keep_days`` after the drop, which bounds them to the dossiers dropped in
    that many days; the purge raises the horizon (``dropped_horizon``) to the latest remembered
    instant of the purged dossiers, and a batch does not take in a dossier it has neither a row
    nor a tombstone of when all its new events are at or before the horizon: a forgotten dossier
    is treated as a dropped one, and a dossier first heard of with only events that old (a
    back-fill older than ≈ keep + dropped keep days) is not taken in either — warnings are about
    dossiers due now. Events of a forgotten dossier dated after all it had when dropped (a sync
    or an officer's step back-filled later) still make a row, with no receipt: no warning.

    Each chunk takes the dossiers' advisory locks as a batch does (``LOCK_DOSSIERS``, same order):
    a batch folding an event of a dossier and the sweep dropping it never interleave — the batch
    either sees the tombstone or writes the row before the sweep checks it again."""
    cutoff = now - timedelta(days=app.settings.reporting_finished_keep_days)
    dropped, after = 0, ""
    while True:
        async with app.uow() as uow:
            chunk = await sweep_chunk(uow, cutoff, after=after)
        if chunk is None:
            break
        after, n = chunk
        dropped += n
    async with app.uow() as uow:
        conn = await driver_connection(uow.session)
        await conn.execute(_PURGE, now - timedelta(days=app.settings.reporting_dropped_keep_days))
    return dropped


async def sweep_chunk(uow: UnitOfWork, cutoff: datetime, *, after: str) -> tuple[str, int] | None:
    """Drop up to ``SWEEP_CHUNK`` finished dossiers after ``after`` (id order) and tombstone them;
    returns the last id looked at and how many were dropped, None when none was left."""
    conn = await driver_connection(uow.session)
    ids = [r[0] for r in await conn.fetch(_PICK, cutoff, after, SWEEP_CHUNK)]
    if not ids:
        return None
    await conn.execute(LOCK_DOSSIERS, ids)
    status = await conn.execute(_DROP, cutoff, ids)
    return ids[-1], int(status.rsplit(" ", 1)[-1])


async def _housekeeping(app: Reporting, stop: asyncio.Event) -> None:
    async def sweep() -> None:  # a failed sweep is retried next hour
        dropped = await drop_finished_dossiers(app, datetime.now(UTC))
        if dropped:
            log.info("finished dossiers dropped", extra={"rows": dropped})

    await run_every(HOUSEKEEPING_S, sweep, stop=stop, name="reporting housekeeping")


async def _run(app: Reporting) -> None:
    async with app.uow() as uow:
        await seed_reference(app.settings.reference_dir, uow=uow)
    parts = worker_parts(app)
    await run_worker(replace(parts, background=[*parts.background, lambda stop: _housekeeping(app, stop)]))


def main() -> None:
    app = bootstrap()
    configure_telemetry(f"{SERVICE}-worker", log_level=app.settings.log_level)
    event_loop.run(_run(app))


if __name__ == "__main__":
    main()
