"""Integration events: the messages services exchange over RabbitMQ.

Every contract names its routing key explicitly and carries a version in it; consumers
ignore fields they do not know (tolerant reader), so a producer may add fields freely but
must publish a new version for any change of meaning.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class IntegrationEvent(BaseModel):
    """Base of every message body; ``routing_key`` is part of the contract."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    routing_key: ClassVar[str]


class RawEvent(BaseModel):
    """One accepted event exactly as the source sent it (events.md envelope)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: str
    event_id: str
    type: str
    occurred_at: str
    data: dict[str, Any]


class DossierEventsAccepted(IntegrationEvent):
    """A batch of accepted ``dossier.*`` events (at most a few hundred per message)."""

    routing_key: ClassVar[str] = "ingest.dossier-events.v1"
    events: list[RawEvent]
    accepted_at: datetime | None = None
    """When ingest accepted the batch (its commit): the start of the freshness clock."""


class ProcedureEventsAccepted(IntegrationEvent):
    """A batch of accepted ``procedure.upserted`` events."""

    routing_key: ClassVar[str] = "ingest.procedure-events.v1"
    events: list[RawEvent]


class UnitRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str
    name: str
    level: str
    parent_code: str | None
    valid_from: str | None = None
    valid_to: str | None = None
    successor_code: str | None = None
    # Counted by ingest at each change of the unit: a copy applies a record only when it is not
    # older than the one it holds, so a redelivery (a retry) never brings an older unit back.
    # 0: a sender that counts nothing (applied over another 0 only).
    revision: int = 0


class UnitsChanged(IntegrationEvent):
    """The unit tree changed (created or edited units, with their validity and successors)."""

    routing_key: ClassVar[str] = "ingest.units-changed.v1"
    units: list[UnitRecord]


def replay_routing_key(consumer: str) -> str:
    """Replays of the raw log go to exactly one named consumer, never to everyone."""
    return f"replay.{consumer}"


class ReplayBatch(BaseModel):
    """Part of a replay of the raw log to one consumer (routing key ``replay.<consumer>``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    replay_id: str
    consumer: str
    batch_no: int
    events: list[RawEvent]


class ReplayFinished(BaseModel):
    """Sent after every batch of a replay: the consumer knows how many events to expect."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    replay_id: str
    consumer: str
    batches: int
    events: int
