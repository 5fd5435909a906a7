"""``python -m services.reporting.worker``: score, dossier, procedure and unit consumers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from services.reporting.adapters.tables import dossier
from services.reporting.bootstrap import SERVICE, Reporting, bootstrap, worker_parts
from services.reporting.handlers.messages import seed_reference
from shared import event_loop
from shared.periodic import run_every
from shared.telemetry import configure_telemetry
from shared.worker import run_worker

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 3600


async def drop_finished_dossiers(app: Reporting, now: datetime) -> int:
    """Finished dossiers are kept a while (a late event must not reopen them), then dropped: a
    while after they finished and after their last event arrived. Not by the finish alone: a
    back-fill of last year stores a completion before its receipt, and a row dropped in between
    came back from the receipt alone, open and overdue for good."""
    cutoff = now - timedelta(days=app.settings.reporting_finished_keep_days)
    async with app.uow() as uow:
        result = await uow.session.execute(
            delete(dossier).where(dossier.c.finished_at < cutoff, dossier.c.updated_at < cutoff)
        )
    return int(getattr(result, "rowcount", 0) or 0)


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
