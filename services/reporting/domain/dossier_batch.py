"""A batch of ingest's dossier events as reporting reads it (lô sự kiện hồ sơ).

A back-fill sends a million events through here, so the body is read with orjson and only the
fields reporting uses are checked (source, type, time, the dossier named in data), rather than
validating every event's whole envelope with pydantic. A malformed event is skipped and counted;
a body that is not the contract (no ``events`` list, a bad ``accepted_at``) raises, so the message
is retried and then parked for a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson

from services.reporting.domain.dossiers import DossierEvent


@dataclass
class DossierBatch:
    events: list[tuple[str, DossierEvent]] = field(default_factory=list)
    """(source, event) in the order they came."""
    accepted_at: datetime | None = None
    """When ingest accepted the batch, when it said so."""
    skipped: int = 0
    """Malformed events left out (not an object, a field of the wrong type, no dossier id,
    a time without an offset, a type that is not ``dossier.*``)."""


def read_batch(body: bytes) -> DossierBatch:
    message = orjson.loads(body)
    events = message["events"]
    if not isinstance(events, list):
        raise ValueError("the message's events are not a list")
    accepted = message.get("accepted_at")
    if accepted is not None and not isinstance(accepted, str):
        raise ValueError("the message's accepted_at is not a time")
    batch = DossierBatch(accepted_at=datetime.fromisoformat(accepted) if accepted else None)
    out = batch.events
    for e in events:
        try:
            source, kind, data = e["source"], e["type"], e["data"]
            dossier_id = data["dossier_id"]
            at = datetime.fromisoformat(e["occurred_at"])
        except (KeyError, TypeError, ValueError):
            batch.skipped += 1
            continue
        if (
            type(source) is not str
            or type(kind) is not str
            or not kind.startswith("dossier.")
            or type(dossier_id) is not str
            or not dossier_id
            or at.tzinfo is None
        ):
            batch.skipped += 1
            continue
        out.append((source, DossierEvent(dossier_id, kind, at, data)))
    return batch
