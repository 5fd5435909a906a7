"""Feedback's composition root: engine, unit of work, calendar, codes, criteria, worker parts."""

from __future__ import annotations

from dataclasses import dataclass

from services.feedback.adapters.crypto import Sealer
from services.feedback.adapters.tables import inbox, outbox
from services.feedback.domain.ratings import Criterion, load_criteria
from services.feedback.settings import FeedbackSettings
from shared.calendar import WorkingCalendar
from shared.db import create_engine, session_factory
from shared.rating_code import RatingCodes
from shared.unit_of_work import ServiceDatabase
from shared.worker import WorkerParts

SERVICE = "feedback"
EXCHANGE = "feedback.events"


@dataclass
class Feedback(ServiceDatabase):
    OUTBOX = outbox
    EXCHANGE = EXCHANGE

    settings: FeedbackSettings
    rating_codes: RatingCodes
    calendar: WorkingCalendar
    criteria: tuple[Criterion, ...]
    sealer: Sealer

    @property
    def criteria_by_id(self) -> dict[str, Criterion]:
        return {c.criterion_id: c for c in self.criteria}


def bootstrap(settings: FeedbackSettings | None = None) -> Feedback:
    settings = settings or FeedbackSettings()
    engine = create_engine(settings, application_name=SERVICE)
    return Feedback(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        rating_codes=RatingCodes.from_spec(settings.rating_code_keys),
        calendar=WorkingCalendar(),
        criteria=load_criteria(settings.reference_dir / "rating_criteria.csv"),
        sealer=Sealer(settings.feedback_contact_key),
    )


def worker_parts(app: Feedback) -> WorkerParts:
    from services.feedback.subscriptions import SUBSCRIPTIONS

    return WorkerParts(
        settings=app.settings,
        database=app,
        inbox=inbox,
        subscriptions=SUBSCRIPTIONS,
    )
