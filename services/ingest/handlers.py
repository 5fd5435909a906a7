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
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.ingest.adapters import repository
from services.ingest.domain import reasons
from services.ingest.domain.units import Unit
from services.ingest.domain.validation import Rejection, ValidEvent, readable_times, validate_record
from services.ingest.reference import ReferenceData
from shared.contracts import DossierEventsAccepted, ProcedureEventsAccepted, RawEvent
from shared.db import driver_connection
from shared.identity import Principal
from shared.rating_code import RatingCodes
from shared.unit_of_work import UnitOfWork
from shared.unit_tree import covers

VN = ZoneInfo("Asia/Ho_Chi_Minh")
_SORT_KEYS = orjson.OPT_SORT_KEYS
_sha256 = hashlib.sha256


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    rating_codes: dict[str, str] = field(default_factory=dict)
    # Rejection errors by metric label (``data.due_at:range``), for the metrics.
    reason_labels: Counter[str] = field(default_factory=Counter)

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
    owners: Mapping[str, tuple[str, str]],
) -> tuple[list[ValidEvent], list[Rejection]]:
    """Reject events naming unknown codes or units closed on the day, events outside the API
    key's source and units, and receipts of a dossier another source or unit received first.

    ``owners`` maps the request's known dossiers to (unit, source) of their first receipt.
    """
    procedures = reference.procedures | {
        str(e.data["procedure_code"]) for e in events if e.type == "procedure.upserted"
    }
    # Receipts in this request claim their dossiers in order: the first one wins.
    claims: dict[str, tuple[str, str]] = {}
    for e in events:
        if e.type == "dossier.received" and e.dossier_id and e.dossier_id not in owners:
            claims.setdefault(e.dossier_id, (str(e.data["unit_code"]), e.source))
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
            forbidden.append(reasons.FORBIDDEN_SOURCE.at("source", source=source))
        for name in ("unit_code", "to_unit_code"):
            code = data.get(name)
            if code is None:
                continue
            unit = units.get(code)
            if unit is None:
                errors.append(reasons.UNKNOWN_UNIT.at(f"data.{name}", code=code))
            else:
                day = e.occurred_at.astimezone(VN).date()
                if not unit.exists_on(day):
                    errors.append(_validity(f"data.{name}", unit, day, reference))
        code = data.get("procedure_code")
        if received and code not in procedures:
            errors.append(reasons.UNKNOWN_PROCEDURE.at("data.procedure_code", code=code))
        dossier_id = e.dossier_id
        owner = (owners.get(dossier_id) or claims.get(dossier_id)) if dossier_id is not None else None
        if received:
            unit_code = data.get("unit_code")
            if owner is not None and owner != (unit_code, e.source):
                errors.append(reasons.TAKEOVER.at("data.dossier_id"))
            elif unit_code in units and not allowed(str(unit_code)):
                forbidden.append(reasons.FORBIDDEN_UNIT.at("data.unit_code", code=unit_code))
        elif owner is not None and owner[0] in units and not allowed(owner[0]):
            forbidden.append(reasons.FORBIDDEN_DOSSIER.at("data.dossier_id"))
        if e.type == "procedure.upserted":
            if catalogue_key is None:
                catalogue_key = covers(reference.parents, principal.units, _root(reference))
            if not catalogue_key:
                forbidden.append(reasons.FORBIDDEN_CATALOGUE.at("type"))
        if errors or forbidden:
            rejected.append(Rejection(e.index, e.event_id, errors + forbidden, forbidden=not errors))
        else:
            ok.append(e)
    return ok, rejected


def _validity(field_name: str, unit: Unit, day: date, reference: ReferenceData) -> dict[str, str]:
    """Which unit to name instead: the predecessors before the unit began, the successor after it closed."""
    if unit.valid_from is not None and day < unit.valid_from:
        before = sorted(reference.predecessors.get(unit.code, ()))
        others = ", ".join(before) if before else "the unit then in charge"
        valid = {"valid_from": unit.valid_from.isoformat()}
        return reasons.UNIT_NOT_YET.at(field_name, code=unit.code, others=others, **valid)
    assert unit.valid_to is not None
    others = unit.successor_code or "the unit now in charge"
    return reasons.UNIT_CLOSED.at(field_name, code=unit.code, valid_to=unit.valid_to.isoformat(), others=others)


def _root(reference: ReferenceData) -> str:
    return next((c for c, u in reference.units.items() if u.parent_code is None), "")


def _dedupe(
    events: Sequence[ValidEvent],
) -> tuple[list[ValidEvent], dict[str, bytes], list[ValidEvent], list[Rejection]]:
    """First occurrence wins; also returns each kept event's body hash (computed once) and the
    identical repeats (duplicates)."""
    seen: dict[str, bytes] = {}
    unique: list[ValidEvent] = []
    duplicates: list[ValidEvent] = []
    conflicts: list[Rejection] = []
    for e in events:
        digest = body_hash(e)
        first = seen.get(e.event_id)
        if first is None:
            seen[e.event_id] = digest
            unique.append(e)
        elif first == digest:
            duplicates.append(e)
        else:
            conflicts.append(_conflict(e))
    return unique, seen, duplicates, conflicts


def dedupe_within_request(events: Sequence[ValidEvent]) -> tuple[list[ValidEvent], int, list[Rejection]]:
    """First occurrence wins; an identical repeat is a duplicate, a changed one a conflict."""
    unique, _, duplicates, conflicts = _dedupe(events)
    return unique, len(duplicates), conflicts


def _conflict(e: ValidEvent) -> Rejection:
    return Rejection(e.index, e.event_id, [reasons.CONFLICT.at("event_id")])


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
    """Validate, dedupe and store a batch of events; announce the accepted ones.

    Everything runs in ``uow``'s one transaction: the key claims, the raw log, the dossier
    owners, the feed counters and the outbox rows commit together or not at all.
    """
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
    owners = await repository.dossier_owners(conn, [e.dossier_id for e in valid if e.dossier_id])
    valid, refused = check_reference(valid, principal=principal, reference=reference, owners=owners)
    result.rejected += refused
    unique, hashes, duplicates, conflicts = _dedupe(valid)
    result.rejected += conflicts
    source = principal.source or ""
    if unique:
        # Receipts of dossiers nobody owns yet claim them with their event keys (one statement).
        receipts = [
            (e.dossier_id, str(e.data["unit_code"]), e.source, e.occurred_at, e.event_id)
            for e in unique
            if e.type == "dossier.received" and e.dossier_id and e.dossier_id not in owners
        ]
        new_ids, recorded = await repository.claim_event_keys(
            conn, source, list(hashes), list(hashes.values()), receipts
        )
        # Event id → the error of its first occurrence, when that one was finally refused: the
        # request's identical repeats of it share its fate (they are no duplicates of anything).
        turned_down: dict[str, dict[str, str]] = {}
        if len(new_ids) == len(unique):
            accepted = unique
        else:
            old = [e for e in unique if e.event_id not in new_ids]
            stored = await repository.known_hashes(conn, source, [e.event_id for e in old])
            for e in old:
                if stored.get(e.event_id) == hashes[e.event_id]:
                    duplicates.append(e)
                else:
                    conflict = _conflict(e)
                    result.rejected.append(conflict)
                    turned_down[e.event_id] = conflict.errors[0]
            accepted = [e for e in unique if e.event_id in new_ids]
        claimed = {r[0] for r in receipts if r[4] in new_ids}
        accepted = await _lost_races(
            accepted, claimed - recorded, conn=conn, source=source, result=result, turned_down=turned_down
        )
        if turned_down:
            duplicates = _refuse_repeats(duplicates, turned_down, result)
        await _store(accepted, uow=uow, conn=conn, now=now, message_batch=message_batch)
        result.accepted = len(accepted)
        # A resent receipt answers its code again: the first answer may have been lost.
        issue = rating_codes.issue
        result.rating_codes = {
            e.dossier_id: issue(e.dossier_id, str(e.data["unit_code"]))
            for e in (*accepted, *duplicates)
            if e.type == "dossier.received" and e.dossier_id
        }
    result.duplicates = len(duplicates)
    labels = Counter(reasons.label(err) for r in result.rejected for err in r.errors)
    await repository.record_feed(
        conn,
        source=source,
        day=now.astimezone(VN).date(),
        now=now,
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=len(result.rejected),
        last_event_at=max((e.occurred_at for e in unique), default=None),
        reasons=dict(labels),
    )
    result.reason_labels = labels
    return result


def _refuse_repeats(
    duplicates: list[ValidEvent], turned_down: Mapping[str, dict[str, str]], result: IngestResult
) -> list[ValidEvent]:
    """The duplicates left once the repeats of turned-down events are rejected with their error."""
    kept: list[ValidEvent] = []
    for e in duplicates:
        error = turned_down.get(e.event_id)
        if error is None:
            kept.append(e)
        else:
            result.rejected.append(Rejection(e.index, e.event_id, [error]))
    return kept


async def _lost_races(
    accepted: list[ValidEvent],
    raced: set[str],
    *,
    conn: Any,
    source: str,
    result: IngestResult,
    turned_down: dict[str, dict[str, str]],
) -> list[ValidEvent]:
    """A receipt whose dossier was not recorded by this request (``raced``: recorded meanwhile
    by a concurrent one) stands if the owner is the same; otherwise it lost the race and
    becomes a conflict, and its claimed event key is given back (its error goes in ``turned_down``)."""
    if not raced:
        return accepted
    winners = await repository.dossier_owners(conn, list(raced))
    lost = [
        e
        for e in accepted
        if e.type == "dossier.received"
        and e.dossier_id in raced
        and winners.get(e.dossier_id or "") != (e.data["unit_code"], e.source)
    ]
    if not lost:
        return accepted
    await repository.release_event_keys(conn, source, [e.event_id for e in lost])
    for e in lost:
        takeover = Rejection(e.index, e.event_id, [reasons.TAKEOVER.at("data.dossier_id")])
        result.rejected.append(takeover)
        turned_down[e.event_id] = takeover.errors[0]
    lost_indexes = {e.index for e in lost}
    return [e for e in accepted if e.index not in lost_indexes]


def _message_bodies(
    events: Sequence[dict[str, Any]], size: int, *, accepted_at: datetime | None = None
) -> Iterator[bytes]:
    """``{"events": [RawEvent…]}`` per ``size`` events: the bytes ``orjson.dumps(contract.model_dump(mode="json"))``
    gives for the batch contracts, serialised directly (no pydantic model per event)."""
    extra = {} if accepted_at is None else {"accepted_at": accepted_at}
    for start in range(0, len(events), size):
        yield orjson.dumps({"events": events[start : start + size], **extra})


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
            "data": readable_times(e.data),
        }
        (catalogue if e.type == "procedure.upserted" else lifecycle).append(raw)
    # Procedures first: a consumer then knows the catalogue before the dossiers that use it.
    for body in _message_bodies(catalogue, message_batch):
        uow.publish_raw(routing_key=ProcedureEventsAccepted.routing_key, body=body)
    # The freshness clock starts here, the last moment before the commit.
    for body in _message_bodies(lifecycle, message_batch, accepted_at=datetime.now(UTC)):
        uow.publish_raw(routing_key=DossierEventsAccepted.routing_key, body=body)
