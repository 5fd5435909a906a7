"""Ingest's composition root: builds the engine, unit of work, caches and worker parts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from services.ingest.adapters.tables import inbox, outbox
from services.ingest.reference import ReferenceCache
from services.ingest.replay import run_replays
from services.ingest.settings import IngestSettings
from shared.db import create_engine, session_factory
from shared.rating_code import RatingCodes
from shared.unit_of_work import ServiceDatabase
from shared.worker import WorkerParts

SERVICE = "ingest"
EXCHANGE = "ingest.events"


@dataclass
class Ingest(ServiceDatabase):
    OUTBOX = outbox
    EXCHANGE = EXCHANGE

    settings: IngestSettings
    reference: ReferenceCache
    rating_codes: RatingCodes


def bootstrap(settings: IngestSettings | None = None, *, rating_codes: RatingCodes | None = None) -> Ingest:
    """Ingest's parts; ``rating_codes`` instead of those of ``SQI_RATING_CODE_KEYS`` (seeding)."""
    settings = settings or IngestSettings()
    engine = create_engine(settings, application_name=SERVICE)
    sessions = session_factory(engine)
    return Ingest(
        settings=settings,
        engine=engine,
        sessions=sessions,
        reference=ReferenceCache(sessions),
        rating_codes=rating_codes or RatingCodes.from_spec(settings.rating_code_keys),
    )


def worker_parts(app: Ingest) -> WorkerParts:
    # Ingest consumes nothing: its worker relays the outbox and runs replay jobs.
    return WorkerParts(
        settings=app.settings,
        database=app,
        inbox=inbox,
        background=[partial(run_replays, app.uow)],
    )
