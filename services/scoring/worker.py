"""``python -m services.scoring.worker``: consumer, outbox relay and score refresher.

The worker's composition lives here, not in :mod:`services.scoring.bootstrap`: the API and
``./sqi recompute`` start from the same root without importing the refresher.
"""

from __future__ import annotations

from services.scoring.adapters.tables import inbox
from services.scoring.application.refresher import make_refresher
from services.scoring.bootstrap import SERVICE, Scoring, bootstrap
from services.scoring.subscriptions import SUBSCRIPTIONS
from shared import event_loop
from shared.telemetry import configure_telemetry
from shared.worker import WorkerParts, run_worker


def worker_parts(app: Scoring) -> WorkerParts:
    return WorkerParts(
        settings=app.settings,
        database=app,
        inbox=inbox,
        subscriptions=SUBSCRIPTIONS,
        background=[make_refresher(app)],
    )


def main() -> None:
    app = bootstrap()
    configure_telemetry(f"{SERVICE}-worker", log_level=app.settings.log_level)
    event_loop.run(run_worker(worker_parts(app)))


if __name__ == "__main__":
    main()
