"""``python -m services.feedback.worker``: unit and dossier consumers plus the outbox relay."""

from __future__ import annotations

from services.feedback.bootstrap import SERVICE, Feedback, bootstrap, worker_parts
from services.feedback.handlers.messages import seed_reference_units
from shared import event_loop
from shared.telemetry import configure_telemetry
from shared.worker import run_worker


async def _run(app: Feedback) -> None:
    async with app.uow() as uow:
        await seed_reference_units(app.settings.reference_dir / "units.csv", uow=uow)
    await run_worker(worker_parts(app))


def main() -> None:
    app = bootstrap()
    configure_telemetry(f"{SERVICE}-worker", log_level=app.settings.log_level)
    event_loop.run(_run(app))


if __name__ == "__main__":
    main()
