"""Feedback's explicit subscriptions to ingest's exchange (inbox-deduped by the consumer)."""

from __future__ import annotations

from services.feedback.handlers.messages import on_dossier_batches, on_units_changed
from shared.contracts import DossierEventsAccepted, UnitsChanged
from shared.messaging.topology import Subscription

INGEST_EXCHANGE = "ingest.events"


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(
        queue="feedback.units",
        exchange=INGEST_EXCHANGE,
        routing_keys=[UnitsChanged.routing_key],
        handler=on_units_changed,
    ),
    Subscription(
        queue="feedback.dossier-units",
        exchange=INGEST_EXCHANGE,
        routing_keys=[DossierEventsAccepted.routing_key],
        batch_handler=on_dossier_batches,
    ),
]
