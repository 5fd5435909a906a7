"""Scoring's explicit subscriptions: ingest's dossier, procedure and unit events (a batch handler:
a burst of dossier-event messages is stored with two statements), feedback's ratings and
petitions (one message at a time: each is one row and one mark)."""

from __future__ import annotations

from services.scoring.handlers.messages import on_message, on_messages
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
        batch_handler=on_messages,
    ),
    Subscription(
        queue="scoring.feedback-events",
        exchange=FEEDBACK_EXCHANGE,
        routing_keys=[RatingSubmitted.routing_key, PetitionChanged.routing_key],
        handler=on_message,
    ),
]
