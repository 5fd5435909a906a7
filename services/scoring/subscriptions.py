"""Scoring's explicit subscription: ingest's dossier, procedure and unit events, feedback's too."""

from __future__ import annotations

from services.scoring.handlers.messages import on_message
from shared.contracts import DossierEventsAccepted, ProcedureEventsAccepted, UnitsChanged
from shared.contracts.feedback import PetitionChanged, RatingSubmitted
from shared.messaging.topology import Subscription

INGEST_EXCHANGE = "ingest.events"
FEEDBACK_EXCHANGE = "feedback.events"

SUBSCRIPTIONS: list[Subscription] = [
    Subscription(
        queue="scoring.dossier-events",
        exchange=INGEST_EXCHANGE,
        routing_keys=[
            DossierEventsAccepted.routing_key,
            ProcedureEventsAccepted.routing_key,
            UnitsChanged.routing_key,
        ],
        handler=on_message,
    ),
    Subscription(
        queue="scoring.feedback-events",
        exchange=FEEDBACK_EXCHANGE,
        routing_keys=[RatingSubmitted.routing_key, PetitionChanged.routing_key],
        handler=on_message,
    ),
]
