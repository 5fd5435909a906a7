"""``python -m services.scoring.worker``: consumer, outbox relay and score refresher."""

from __future__ import annotations

import asyncio

from services.scoring.bootstrap import SERVICE, bootstrap, worker_parts
from shared.telemetry import configure_telemetry
from shared.worker import run_worker


def main() -> None:
    app = bootstrap()
    configure_telemetry(f"{SERVICE}-worker", log_level=app.settings.log_level)
    asyncio.run(run_worker(worker_parts(app)))


if __name__ == "__main__":
    main()
