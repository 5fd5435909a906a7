"""``python -m services.reporting.worker``: score, dossier, procedure and unit consumers."""

from __future__ import annotations

import asyncio

from services.reporting.bootstrap import SERVICE, Reporting, bootstrap, worker_parts
from services.reporting.handlers.messages import seed_reference
from shared.telemetry import configure_telemetry
from shared.worker import run_worker


async def _run(app: Reporting) -> None:
    async with app.uow() as uow:
        await seed_reference(app.settings.reference_dir, uow=uow)
    await run_worker(worker_parts(app))


def main() -> None:
    app = bootstrap()
    configure_telemetry(f"{SERVICE}-worker", log_level=app.settings.log_level)
    asyncio.run(_run(app))


if __name__ == "__main__":
    main()
