"""``python -m services.ingest.worker``: the outbox relay of the ingest service."""

from __future__ import annotations

from services.ingest.bootstrap import SERVICE, bootstrap, worker_parts
from shared import event_loop
from shared.telemetry import configure_telemetry
from shared.worker import run_worker


def main() -> None:
    app = bootstrap()
    configure_telemetry(f"{SERVICE}-worker", log_level=app.settings.log_level)
    event_loop.run(run_worker(worker_parts(app)))


if __name__ == "__main__":
    main()
