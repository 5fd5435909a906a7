"""Ingest's use cases as plain functions of (command, unit of work, …).

A request of thousands of events is the normal case, so the per-event path is kept lean: each
event is hashed once, message bodies are serialised straight to the contract's JSON (the same
bytes the pydantic contracts produce, without building a model per event) and per-request
caches stand in for repeated lookups. ``docs/performance.md`` has the figures.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.ingest.adapters import repository
from services.ingest.domain.validation import Rejection, ValidEvent, validate_record
from services.ingest.reference import ReferenceData
from shared.contracts import DossierEventsAccepted, ProcedureEventsAccepted, RawEvent
from shared.db import driver_connection
from shared.identity import Principal
from shared.rating_code import RatingCodes
from shared.unit_of_work import UnitOfWork
from shared.unit_tree import covers

VN = ZoneInfo("Asia/Ho_Chi_Minh")
FORBIDDEN_REASON = "not permitted for this API key"
_SORT_KEYS = orjson.OPT_SORT_KEYS
_sha256 = hashlib.sha256


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    rating_codes: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.as_json() for r in sorted(self.rejected, key=lambda r: r.index)],
            "rating_codes": self.rating_codes,
        }

    @property
    def all_forbidden(self) -> bool:
        return bool(self.rejected) and all(r.forbidden for r in self.rejected)


def body_hash(event: ValidEvent) -> bytes:
    """What makes two sends of one event "the same": type, instant, source and data.

    The instant is normalised to UTC so that the same moment written with another offset
    is still a duplicate, not a conflict; key order in JSON does not matter. (Stored in
    ``event_key``: any change here would turn earlier events' resends into conflicts.)
    """
    canonical = {
        "type": event.type,
        # orjson writes an aware datetime exactly as ``isoformat()`` does, at half the cost.
        "occurred_at": event.occurred_at.astimezone(UTC),
        "source": event.source,
        "data": event.data,
    }
    return _sha256(orjson.dumps(canonical, option=_SORT_KEYS)).digest()


class _Coverage:
    """``covers`` memoised for one request: thousands of events name a few dozen units."""

    def __init__(self, parents: Mapping[str, str | None], roots: Sequence[str]) -> None:
        self._parents = parents
        self._roots = roots
        self._known: dict[str, bool] = {}

    def __call__(self, code: str) -> bool:
        known = self._known.get(code)
        if known is None:
            known = self._known[code] = covers(self._parents, self._roots, code)
        return known


def check_reference(
    events: Sequence[ValidEvent],
    *,
    principal: Principal,
    reference: ReferenceData,
    dossier_units: dict[str, str],
) -> tuple[list[ValidEvent], list[Rejection]]:
    """Reject events naming unknown codes or falling outside the API key's source and units."""
    procedures = reference.procedures | {
        str(e.data["procedure_code"]) for e in events if e.type == "procedure.upserted"
    }
    received_units = {e.dossier_id: str(e.data["unit_code"]) for e in events if e.type == "dossier.received"}
    units = reference.units
    allowed = _Coverage(reference.parents, principal.units)
    catalogue_key: bool | None = None  # computed on the first procedure event only
    source = principal.source
    ok: list[ValidEvent] = []
    rejected: list[Rejection] = []
    for e in events:
        errors: list[dict[str, str]] = []
        forbidden: list[dict[str, str]] = []
        data = e.data
        received = e.type == "dossier.received"
        if e.source != source:
            forbidden.append({"field": "source", "reason": f"{FORBIDDEN_REASON} (key's source is {source})"})
        unit_code = data.get("unit_code")
        if unit_code is not None and unit_code not in units:
            errors.append({"field": "data.unit_code", "reason": f"unknown unit code {unit_code!r}"})
        to_unit = data.get("to_unit_code")
        if to_unit is not None and to_unit not in units:
            errors.append({"field": "data.to_unit_code", "reason": f"unknown unit code {to_unit!r}"})
        code = data.get("procedure_code")
        if received and code not in procedures:
            errors.append({"field": "data.procedure_code", "reason": f"unknown procedure code {code!r}"})
        unit = unit_code if received else None
        if unit is None:
            dossier_id = e.dossier_id
            if dossier_id is not None:
                unit = dossier_units.get(dossier_id) or received_units.get(dossier_id)
        if unit in units and not allowed(str(unit)):
            field_name = "data.unit_code" if received else "data.dossier_id"
            forbidden.append({"field": field_name, "reason": f"{FORBIDDEN_REASON}: unit {unit}"})
        if e.type == "procedure.upserted":
            if catalogue_key is None:
                catalogue_key = covers(reference.parents, principal.units, _root(reference))
            if not catalogue_key:
                forbidden.append(
                    {
                        "field": "type",
                        "reason": f"{FORBIDDEN_REASON}: only a catalogue key may publish procedures",
                    }
                )
        if errors or forbidden:
            rejected.append(Rejection(e.index, e.event_id, errors + forbidden, forbidden=not errors))
        else:
            ok.append(e)
    return ok, rejected


def _root(reference: ReferenceData) -> str:
    return next((c for c, u in reference.units.items() if u.parent_code is None), "")


def _dedupe(events: Sequence[ValidEvent]) -> tuple[list[ValidEvent], dict[str, bytes], int, list[Rejection]]:
    """First occurrence wins; also returns each kept event's body hash (computed once)."""
    seen: dict[str, bytes] = {}
    unique: list[ValidEvent] = []
    duplicates = 0
    conflicts: list[Rejection] = []
    for e in events:
        digest = body_hash(e)
        first = seen.get(e.event_id)
        if first is None:
            seen[e.event_id] = digest
            unique.append(e)
        elif first == digest:
            duplicates += 1
        else:
            conflicts.append(_conflict(e))
    return unique, seen, duplicates, conflicts


def dedupe_within_request(events: Sequence[ValidEvent]) -> tuple[list[ValidEvent], int, list[Rejection]]:
    """First occurrence wins; an identical repeat is a duplicate, a changed one a conflict."""
    unique, _, duplicates, conflicts = _dedupe(events)
    return unique, duplicates, conflicts


def _conflict(e: ValidEvent) -> Rejection:
    return Rejection(
        e.index,
        e.event_id,
        [
            {
                "field": "event_id",
                "reason": "conflict: this id was already accepted with a different body; the first version stays",
            }
        ],
    )


def chunks(items: Sequence[RawEvent], size: int) -> Iterator[list[RawEvent]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


async def ingest_events(
    records: Sequence[Any],
    *,
    principal: Principal,
    uow: UnitOfWork,
    reference: ReferenceData,
    rating_codes: RatingCodes,
    now: datetime,
    future_tolerance: timedelta = timedelta(days=1),
    message_batch: int = 500,
) -> IngestResult:
    """Validate, dedupe and store a batch of events; announce the accepted ones."""
    result = IngestResult()
    valid: list[ValidEvent] = []
    latest = now + future_tolerance
    for index, record in enumerate(records):
        checked = validate_record(index, record, now=now, future_tolerance=future_tolerance, latest=latest)
        if isinstance(checked, ValidEvent):
            valid.append(checked)
        else:
            result.rejected.append(checked)
    conn = await driver_connection(uow.session)
    dossier_ids = [e.dossier_id for e in valid if e.dossier_id and e.type != "dossier.received"]
    known_units = await repository.dossier_units(conn, dossier_ids)
    valid, refused = check_reference(valid, principal=principal, reference=reference, dossier_units=known_units)
    result.rejected += refused
    unique, hashes, in_request_dups, conflicts = _dedupe(valid)
    result.duplicates += in_request_dups
    result.rejected += conflicts
    source = principal.source or ""
    if unique:
        new_ids = await repository.claim_event_keys(conn, source, list(hashes), list(hashes.values()))
        if len(new_ids) == len(unique):
            accepted = unique
        else:
            old = [e for e in unique if e.event_id not in new_ids]
            stored = await repository.known_hashes(conn, source, [e.event_id for e in old])
            for e in old:
                if stored.get(e.event_id) == hashes[e.event_id]:
                    result.duplicates += 1
                else:
                    result.rejected.append(_conflict(e))
            accepted = [e for e in unique if e.event_id in new_ids]
        await _store(accepted, uow=uow, conn=conn, now=now, message_batch=message_batch)
        result.accepted = len(accepted)
        issue = rating_codes.issue
        result.rating_codes = {
            e.dossier_id: issue(e.dossier_id) for e in accepted if e.type == "dossier.received" and e.dossier_id
        }
    reasons = Counter(err["reason"].split(":")[0][:120] for r in result.rejected for err in r.errors)
    await repository.record_feed(
        conn,
        source=source,
        day=now.astimezone(VN).date(),
        now=now,
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=len(result.rejected),
        last_event_at=max((e.occurred_at for e in unique), default=None),
        reasons=dict(reasons),
    )
    return result


def _message_bodies(events: Sequence[dict[str, Any]], size: int) -> Iterator[bytes]:
    """``{"events": [RawEvent…]}`` per ``size`` events: the bytes ``orjson.dumps(contract.model_dump(mode="json"))``
    gives for the batch contracts, serialised directly (no pydantic model per event)."""
    for start in range(0, len(events), size):
        yield orjson.dumps({"events": events[start : start + size]})


async def _store(
    accepted: Sequence[ValidEvent], *, uow: UnitOfWork, conn: Any, now: datetime, message_batch: int
) -> None:
    if not accepted:
        return
    dumps = orjson.dumps
    await repository.append_events(
        conn,
        [(e.source, e.event_id, e.type, e.occurred_at, now, e.dossier_id, dumps(e.body).decode()) for e in accepted],
    )
    await repository.record_dossiers(
        conn,
        [
            (e.dossier_id, str(e.data["unit_code"]), e.source, e.occurred_at)
            for e in accepted
            if e.type == "dossier.received" and e.dossier_id
        ],
    )
    procedures = [e for e in accepted if e.type == "procedure.upserted"]
    await repository.upsert_procedures(
        conn,
        [
            (str(e.data["procedure_code"]), str(e.data["name"]), e.occurred_at, dumps(e.data).decode())
            for e in procedures
        ],
    )
    # RawEvent's fields, in its order (source, event_id, type, occurred_at, data).
    catalogue: list[dict[str, Any]] = []
    lifecycle: list[dict[str, Any]] = []
    for e in accepted:
        raw = {
            "source": e.source,
            "event_id": e.event_id,
            "type": e.type,
            "occurred_at": e.occurred_at,  # serialised by orjson as isoformat() would
            "data": e.data,
        }
        (catalogue if e.type == "procedure.upserted" else lifecycle).append(raw)
    # Procedures first: a consumer then knows the catalogue before the dossiers that use it.
    for body in _message_bodies(catalogue, message_batch):
        uow.publish_raw(routing_key=ProcedureEventsAccepted.routing_key, body=body)
    for body in _message_bodies(lifecycle, message_batch):
        uow.publish_raw(routing_key=DossierEventsAccepted.routing_key, body=body)
