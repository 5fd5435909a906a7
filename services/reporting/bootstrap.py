"""Reporting's composition root: engine, unit of work, worker parts.

The working calendar is not here: it depends on the declared days in the read model
(``adapters.calendar``), read where due times are computed.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.reporting.adapters.tables import inbox, outbox
from services.reporting.settings import ReportingSettings
from shared.db import create_engine, session_factory
from shared.unit_of_work import ServiceDatabase
from shared.worker import WorkerParts

SERVICE = "reporting"
EXCHANGE = "reporting.events"


@dataclass
class Reporting(ServiceDatabase):
    OUTBOX = outbox
    EXCHANGE = EXCHANGE

    settings: ReportingSettings


def bootstrap(settings: ReportingSettings | None = None) -> Reporting:
    settings = settings or ReportingSettings()
    engine = create_engine(settings, application_name=SERVICE)
    return Reporting(settings=settings, engine=engine, sessions=session_factory(engine))


def worker_parts(app: Reporting) -> WorkerParts:
    from services.reporting.subscriptions import SUBSCRIPTIONS

    return WorkerParts(
        settings=app.settings,
        database=app,
        inbox=inbox,
        subscriptions=SUBSCRIPTIONS,
    )
