"""Reporting's explicit subscriptions (inbox-deduped by the consumer)."""

from __future__ import annotations

from services.reporting.handlers.dossier_events import DOSSIER_QUEUE, on_dossier_batches
from services.reporting.handlers.messages import (
    on_calendar_changed,
    on_petition_changed,
    on_procedure_events,
    on_score_alert,
    on_units_changed,
)
from services.reporting.handlers.scores import on_score_batches
from shared.contracts import DossierEventsAccepted, ProcedureEventsAccepted, UnitsChanged
from shared.contracts.feedback import PetitionChanged
from shared.contracts.scoring import CalendarChanged, GradeChanged, ScoreDropped, ScoresUpdated
from shared.messaging.topology import Subscription

INGEST_EXCHANGE = "ingest.events"
SCORING_EXCHANGE = "scoring.events"
FEEDBACK_EXCHANGE = "feedback.events"

SUBSCRIPTIONS: list[Subscription] = [
    Subscription(
        queue="reporting.scores",
        exchange=SCORING_EXCHANGE,
        routing_keys=[ScoresUpdated.routing_key],
        batch_handler=on_score_batches,  # the messages in hand: one statement
    ),
    Subscription(
        queue="reporting.score-alerts",
        exchange=SCORING_EXCHANGE,
        routing_keys=[GradeChanged.routing_key, ScoreDropped.routing_key],
        handler=on_score_alert,
    ),
    Subscription(
        queue="reporting.calendar",
        exchange=SCORING_EXCHANGE,
        routing_keys=[CalendarChanged.routing_key],
        handler=on_calendar_changed,
    ),
    Subscription(
        queue=DOSSIER_QUEUE,  # the feed counts read its inbox purge horizon
        exchange=INGEST_EXCHANGE,
        routing_keys=[DossierEventsAccepted.routing_key],
        batch_handler=on_dossier_batches,
    ),
    Subscription(
        queue="reporting.procedures",
        exchange=INGEST_EXCHANGE,
        routing_keys=[ProcedureEventsAccepted.routing_key],
        handler=on_procedure_events,
    ),
    Subscription(
        queue="reporting.petitions",
        exchange=FEEDBACK_EXCHANGE,
        routing_keys=[PetitionChanged.routing_key],
        handler=on_petition_changed,
    ),
    Subscription(
        queue="reporting.units",
        exchange=INGEST_EXCHANGE,
        routing_keys=[UnitsChanged.routing_key],
        handler=on_units_changed,
    ),
]
