"""Which unit answers for a dossier (đơn vị quản lý hồ sơ), read from a batch of ingest's events.

Feedback needs two facts per dossier: the unit it is at now (received at, or transferred to; the
latest event wins) and the unit that received it (its owner, which binds the rating code). A
back-fill sends a million events through here, so the batch is read with orjson and only the
fields used are checked, rather than validating every event's whole envelope with pydantic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

RECEIVED = "dossier.received"
# The data field naming the unit, per event type that moves a dossier; other types are ignored.
_UNIT_FIELD = {RECEIVED: "unit_code", "dossier.transferred": "to_unit_code"}


@dataclass
class UnitMoves:
    latest: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    """dossier id → (occurred_at, unit code) of its latest receipt or transfer in the batch."""
    receivers: dict[str, str] = field(default_factory=dict)
    """dossier id → the unit of its first receipt in the batch."""
    first_owners: dict[str, str] = field(default_factory=dict)
    """dossier id → its owner as the first message that names it sees it: that message's receiver,
    or, with no receipt in it, that message's latest unit. Held ratings of a dossier are applied
    once, with this owner, when a batch first stores the dossier — as one message at a time would."""
    skipped: int = 0
    """Malformed events left out (a wrong type, a missing field, a time without offset)."""


def unit_moves(body: bytes) -> UnitMoves:
    """The dossiers' units in one ``DossierEventsAccepted`` body.

    A body that is not the contract (no ``events`` list) raises: the message is retried, then
    parked for a person. A malformed event inside it is skipped and counted.
    """
    events = orjson.loads(body)["events"]
    if not isinstance(events, list):
        raise ValueError("the message's events are not a list")
    moves = UnitMoves()
    latest, receivers = moves.latest, moves.receivers
    for e in events:
        try:
            event_type = e["type"]
            unit_field = _UNIT_FIELD.get(event_type)
            if unit_field is None:
                continue
            data = e["data"]
            dossier_id = data["dossier_id"]
            code = data[unit_field]
            at = datetime.fromisoformat(e["occurred_at"])
        except (KeyError, TypeError, ValueError):
            moves.skipped += 1
            continue
        if type(dossier_id) is not str or type(code) is not str or at.tzinfo is None:
            moves.skipped += 1
            continue
        if event_type == RECEIVED:
            receivers.setdefault(dossier_id, code)
        seen = latest.get(dossier_id)
        if seen is None or seen < (at, code):
            latest[dossier_id] = (at, code)
    moves.first_owners = {d: receivers.get(d, unit) for d, (_, unit) in latest.items()}
    return moves


def merged_moves(moves: Sequence[UnitMoves]) -> UnitMoves:
    """Several messages' moves (in delivery order) as one, as if applied one after the other:
    the latest unit (at the same instant the later message's), the first message's receiver, the
    first message's owner."""
    out = UnitMoves()
    latest, receivers, first_owners = out.latest, out.receivers, out.first_owners
    for m in moves:
        out.skipped += m.skipped
        for dossier_id, receiver in m.receivers.items():
            receivers.setdefault(dossier_id, receiver)
        for dossier_id, owner in m.first_owners.items():
            first_owners.setdefault(dossier_id, owner)
        for dossier_id, moved in m.latest.items():
            seen = latest.get(dossier_id)
            if seen is None or seen[0] <= moved[0]:
                latest[dossier_id] = moved
    return out
