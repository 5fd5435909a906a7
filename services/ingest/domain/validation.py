"""Validation of incoming events against events.md: every problem as ``{field, reason}``.

Hand-written rather than pydantic models because integrators need one precise reason per
field in Vietnamese-tax terms, and because a 10,000-event request must validate in
milliseconds. Reference checks (unknown unit or procedure, scope) come later, in the handler.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from services.ingest.domain import reasons as r
from shared.rating_code import is_rateable_dossier_id
from shared.text import CONTROL, CONTROL_IN_TEXT

# shared.text holds the one control-character rule (C0, DEL, C1, direction controls; free text
# keeps tab and line breaks), feedback's too: event fields here, the unit API and paths (api) too.
EVENT_ID = re.compile(r"^[\x20-\x7e]{1,128}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

VN = ZoneInfo("Asia/Ho_Chi_Minh")
# The documented time ranges (docs/integration.md, "Times"): nothing older than SQI's first
# scored year reaches scoring, and no deadline years away can stall a refresh.
EARLIEST_EVENT = datetime(2015, 1, 1, tzinfo=VN)
EARLIEST_PROCEDURE_DATE = date(2000, 1, 1)
MAX_DUE_YEARS = 5
MAX_DUE_AHEAD = timedelta(days=365 * MAX_DUE_YEARS + 2)
MAX_DATE_YEARS = 5
# ``data`` (and any extra envelope field) may nest objects and arrays this deep at most.
MAX_DEPTH = 16

LEVELS = ("central", "province", "local")
ONLINE_LEVELS = ("none", "partial", "full")
CHANNELS = ("counter", "online", "post")
APPLICANTS = ("citizen", "business")
TARGETS = ("citizen", "business", "both")
OUTCOMES = ("approved", "refused")
PAYMENT_CHANNELS = ("national_portal", "gateway", "counter")

Problem = tuple[r.Reason, dict[str, Any]]
Check = Callable[[Any], Problem | None]
_NO_VALUES: dict[str, Any] = {}


@dataclass(frozen=True)
class Field:
    check: Check
    required: bool = True
    nullable: bool = False


def _str(max_len: int = 500, *, text: bool = False) -> Check:
    """A non-empty string; identifiers carry no control characters, free ``text`` keeps line breaks."""
    control = CONTROL_IN_TEXT if text else CONTROL

    def check(v: Any) -> Problem | None:
        if not isinstance(v, str):
            return r.STRING, _NO_VALUES
        if not v.strip():
            return r.EMPTY, _NO_VALUES
        if len(v) > max_len:
            return r.TOO_LONG, {"limit": max_len}
        if control.search(v):
            return r.CONTROL, _NO_VALUES
        return None

    return check


def _dossier_id(v: Any) -> Problem | None:
    if not isinstance(v, str):
        return r.STRING, _NO_VALUES
    return None if is_rateable_dossier_id(v) else (r.DOSSIER_ID, _NO_VALUES)


def _int(minimum: int) -> Check:
    def check(v: Any) -> Problem | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return r.INTEGER, _NO_VALUES
        if v < minimum:
            return r.MINIMUM, {"minimum": minimum}
        return None

    return check


def _bool(v: Any) -> Problem | None:
    return None if isinstance(v, bool) else (r.BOOLEAN, _NO_VALUES)


def _enum(*allowed: str) -> Check:
    values = {"allowed": ", ".join(allowed)}

    def check(v: Any) -> Problem | None:
        return None if v in allowed else (r.ENUM, values)

    return check


def parse_datetime(v: Any) -> datetime | None:
    """An RFC 3339 time with an explicit offset, or None."""
    if not isinstance(v, str) or not RFC3339.match(v):
        return None
    try:
        return datetime.fromisoformat(v.replace("z", "Z"))
    except (ValueError, OverflowError):
        return None


# The times inside ``data`` (of any type: ``due_at`` of a receipt or of a supplement's answer).
DATA_TIMES = ("due_at", "publicized_at")


def readable_times(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` for the consumers: a time ending in RFC 3339's lower-case ``z`` (accepted above)
    gets the ``Z`` that ``datetime.fromisoformat`` (every consumer's reader) insists on; the
    raw log keeps the event as sent. Almost every event has none: it is returned as it is."""
    fixed = {
        name: value[:-1] + "Z"
        for name in DATA_TIMES
        if (value := data.get(name)).__class__ is str and value.endswith("z")
    }
    return {**data, **fixed} if fixed else data


def parse_date(v: Any) -> date | None:
    if isinstance(v, str) and DATE.match(v):
        try:
            return date.fromisoformat(v)
        except ValueError:
            return None
    return None


def _datetime(v: Any) -> Problem | None:
    return None if parse_datetime(v) else (r.DATETIME, _NO_VALUES)


def _date(v: Any) -> Problem | None:
    return None if parse_date(v) else (r.DATE, _NO_VALUES)


def _levels(v: Any) -> Problem | None:
    if not isinstance(v, list) or not v or any(x not in LEVELS for x in v):
        return r.LEVELS, {"allowed": ", ".join(LEVELS)}
    return None


DOSSIER_ID = Field(_dossier_id)
OFFICER = Field(_str(128), required=False, nullable=True)

SCHEMAS: dict[str, dict[str, Field]] = {
    "procedure.upserted": {
        "procedure_code": Field(_str(64)),
        "name": Field(_str(1000, text=True)),
        "field": Field(_str(200, text=True)),
        "levels": Field(_levels),
        "time_limit_wd": Field(_int(0), nullable=True),
        "online_level_offered": Field(_enum(*ONLINE_LEVELS)),
        "has_fee": Field(_bool),
        "returns_document": Field(_bool),
        "target": Field(_enum(*TARGETS)),
        "complete_listing": Field(_bool),
        "legal_effective_date": Field(_date, required=False, nullable=True),
        "published_decision_date": Field(_date, required=False, nullable=True),
        "publicized_at": Field(_datetime, required=False, nullable=True),
    },
    "dossier.received": {
        "dossier_id": DOSSIER_ID,
        "procedure_code": Field(_str(64)),
        "unit_code": Field(_str(64)),
        "due_at": Field(_datetime, required=False, nullable=True),
        "channel": Field(_enum(*CHANNELS)),
        "online_level": Field(_enum(*ONLINE_LEVELS)),
        "applicant_type": Field(_enum(*APPLICANTS)),
        "officer_id": OFFICER,
        "population_data_used": Field(_bool, required=False),
        "personal_store_used": Field(_bool, required=False),
    },
    "dossier.supplement_requested": {
        "dossier_id": DOSSIER_ID,
        "reason": Field(_str(2000, text=True), required=False, nullable=True),
        "officer_id": OFFICER,
    },
    "dossier.supplement_received": {
        "dossier_id": DOSSIER_ID,
        "due_at": Field(_datetime, required=False, nullable=True),
    },
    "dossier.transferred": {
        "dossier_id": DOSSIER_ID,
        "to_unit_code": Field(_str(64)),
        "officer_id": OFFICER,
    },
    "dossier.components_digitized": {
        "dossier_id": DOSSIER_ID,
        "components": Field(_int(1)),
        "reused": Field(_int(0), required=False),
        "from_personal_store": Field(_int(0), required=False),
    },
    "dossier.completed": {
        "dossier_id": DOSSIER_ID,
        "outcome": Field(_enum(*OUTCOMES)),
        "result_digitized": Field(_bool),
        "officer_id": OFFICER,
    },
    "dossier.result_returned": {"dossier_id": DOSSIER_ID},
    "dossier.withdrawn": {"dossier_id": DOSSIER_ID},
    "dossier.paid": {
        "dossier_id": DOSSIER_ID,
        "amount_vnd": Field(_int(0)),
        "channel": Field(_enum(*PAYMENT_CHANNELS)),
    },
    "dossier.synced": {"dossier_id": DOSSIER_ID},
}
EVENT_TYPES = tuple(SCHEMAS)


@dataclass(frozen=True)
class ValidEvent:
    """An event whose envelope and fields are well-formed (reference checks still to come)."""

    index: int
    source: str
    event_id: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any]
    body: Mapping[str, Any]  # the record exactly as sent, for the raw log

    @cached_property
    def dossier_id(self) -> str | None:
        """The dossier a ``dossier.*`` event is about; None for a procedure event, whose extra
        ``dossier_id`` (the envelope allows extra fields) names nothing: no owner checked, no
        dossier recorded in the raw log."""
        if not self.type.startswith("dossier."):
            return None
        value = self.data.get("dossier_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Rejection:
    index: int
    event_id: str | None
    errors: list[dict[str, str]]
    # True when the only problem is the caller's right to send it (answers 403, not 422).
    forbidden: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "event_id": self.event_id,
            "errors": [{"field": e["field"], "reason": e["reason"]} for e in self.errors],
        }


@dataclass(frozen=True)
class UnparsableRecord:
    """An NDJSON line that is not JSON: rejected on its own, the other lines still count."""

    reason: str


# Per type: (name, "data.<name>", check, required, nullable), for the fast path below.
_COMPILED: dict[str, tuple[tuple[str, str, Check, bool, bool], ...]] = {
    t: tuple((name, f"data.{name}", f.check, f.required, f.nullable) for name, f in schema.items())
    for t, schema in SCHEMAS.items()
}
_MISSING = object()
_TIMED_TYPES = frozenset({"dossier.received", "dossier.supplement_received", "procedure.upserted"})


def _fields_ok(fields: tuple[tuple[str, str, Check, bool, bool], ...], data: dict[str, Any]) -> bool:
    for name, _, check, required, nullable in fields:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            if required:
                return False
        elif value is None:
            if not nullable:
                return False
        elif check(value) is not None:
            return False
    return True


def _scan(container: Any, depth: int) -> r.Reason | None:
    """NUL anywhere in a dict or list (PostgreSQL's jsonb cannot store it) or nesting beyond ``MAX_DEPTH``."""
    if depth > MAX_DEPTH:
        return r.TOO_DEEP
    if container.__class__ is dict:
        for key in container:
            if "\x00" in key:
                return r.NUL
        items: Any = container.values()
    else:
        items = container
    for item in items:
        cls = item.__class__
        if cls is str:
            if "\x00" in item:
                return r.NUL
        elif (cls is dict or cls is list) and (found := _scan(item, depth + 1)) is not None:
            return found
    return None


def _scan_record(record: dict[str, Any]) -> dict[str, str] | None:
    """The first NUL or over-deep value of the record as sent (extra fields included)."""
    for key, value in record.items():
        cls = value.__class__
        if "\x00" in key:
            return r.NUL.at("(record)")
        if cls is str:
            found = r.NUL if "\x00" in value else None
        elif cls is dict or cls is list:
            found = _scan(value, 1)
        else:
            continue
        if found is not None:
            return found.at("data" if key == "data" else key if key in _ENVELOPE else "(record)", limit=MAX_DEPTH)
    return None


_ENVELOPE = frozenset({"event_id", "type", "occurred_at", "source", "data"})


def _time_problems(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> list[dict[str, str]]:
    """The documented ranges of the times and dates inside ``data`` (relative to occurred_at)."""
    errors: list[dict[str, str]] = []
    if event_type == "procedure.upserted":
        last = occurred_at.astimezone(VN).date().replace(day=1)
        last = last.replace(year=last.year + MAX_DATE_YEARS)
        values = {"earliest": EARLIEST_PROCEDURE_DATE.isoformat(), "years": MAX_DATE_YEARS}
        for name in ("legal_effective_date", "published_decision_date"):
            day = parse_date(data.get(name))
            if day is not None and not EARLIEST_PROCEDURE_DATE <= day <= last:
                errors.append(r.DATE_RANGE.at(f"data.{name}", **values))
        publicized = parse_datetime(data.get("publicized_at"))
        if publicized is not None and not (
            datetime(2000, 1, 1, tzinfo=VN) <= publicized <= occurred_at + timedelta(days=365 * MAX_DATE_YEARS)
        ):
            errors.append(r.DATE_RANGE.at("data.publicized_at", **values))
        return errors
    due = parse_datetime(data.get("due_at"))
    if due is None:
        return errors
    if due > occurred_at + MAX_DUE_AHEAD:
        errors.append(r.DUE_TOO_FAR.at("data.due_at", years=MAX_DUE_YEARS))
    elif event_type == "dossier.received" and due < occurred_at:
        errors.append(r.DUE_BEFORE_RECEIPT.at("data.due_at"))
    elif due < EARLIEST_EVENT:
        errors.append(r.TOO_EARLY.at("data.due_at", earliest=EARLIEST_EVENT.date().isoformat()))
    return errors


def validate_record(
    index: int, record: Any, *, now: datetime, future_tolerance: timedelta, latest: datetime | None = None
) -> ValidEvent | Rejection:
    """Check one record's envelope and the fields its type requires.

    A well-formed record (the common case by far) takes a fast path; anything it does not
    accept goes through :func:`_validate_slowly`, which names every problem. ``latest`` is
    ``now + future_tolerance``, precomputed by callers checking many records.
    """
    if record.__class__ is dict:
        event_id = record.get("event_id")
        source = record.get("source")
        event_type = record.get("type")
        data = record.get("data")
        fields = _COMPILED.get(event_type) if event_type.__class__ is str else None
        if (
            fields is not None
            and event_id.__class__ is str
            and 0 < len(event_id) <= 128
            and event_id.isascii()
            and event_id.isprintable()
            and source.__class__ is str
            and source.strip()
            and not CONTROL.search(source)
            and data.__class__ is dict
        ):
            occurred_at = parse_datetime(record.get("occurred_at"))
            if (
                occurred_at is not None
                and EARLIEST_EVENT <= occurred_at <= (latest if latest is not None else now + future_tolerance)
                and _fields_ok(fields, data)
                and (event_type not in _TIMED_TYPES or not _time_problems(event_type, occurred_at, data))
                and _scan_record(record) is None
            ):
                return ValidEvent(index, source, event_id, event_type, occurred_at, data, record)  # type: ignore[arg-type]
    return _validate_slowly(index, record, now=now, future_tolerance=future_tolerance)


def _validate_slowly(index: int, record: Any, *, now: datetime, future_tolerance: timedelta) -> ValidEvent | Rejection:
    """Check one record, collecting every problem as ``{field, reason}``."""
    if isinstance(record, UnparsableRecord):
        return Rejection(index, None, [r.UNPARSABLE.at("(record)", detail=record.reason)])
    if not isinstance(record, dict):
        return Rejection(index, None, [r.NOT_OBJECT.at("(record)")])
    errors: list[dict[str, str]] = []
    event_id = record.get("event_id")
    valid_id = isinstance(event_id, str) and EVENT_ID.match(event_id) is not None and "\n" not in event_id
    shown_id = event_id if valid_id else None
    if not valid_id:
        errors.append(r.EVENT_ID.at("event_id"))
    source = record.get("source")
    if not isinstance(source, str) or not source.strip() or CONTROL.search(source):
        errors.append(r.SOURCE.at("source"))
    event_type = record.get("type")
    schema = SCHEMAS.get(event_type) if isinstance(event_type, str) else None
    if schema is None:
        errors.append(r.UNKNOWN_TYPE.at("type", known=", ".join(EVENT_TYPES)))
    occurred_at = parse_datetime(record.get("occurred_at"))
    if occurred_at is None:
        errors.append(r.DATETIME.at("occurred_at"))
    elif occurred_at > now + future_tolerance:
        errors.append(r.FUTURE.at("occurred_at"))
        occurred_at = None  # no time arithmetic on it below (year 9999 would overflow)
    elif occurred_at < EARLIEST_EVENT:
        errors.append(r.TOO_EARLY.at("occurred_at", earliest=EARLIEST_EVENT.date().isoformat()))
        occurred_at = None
    data = record.get("data")
    if not isinstance(data, dict):
        errors.append(r.NOT_OBJECT.at("data"))
    elif schema is not None:
        field_errors = _check_fields(schema, data)
        errors += field_errors
        if occurred_at is not None and not field_errors and event_type in _TIMED_TYPES:
            errors += _time_problems(str(event_type), occurred_at, data)
    deep = _scan_record(record)
    if deep is not None and not any(e["field"] == deep["field"] and e["class"] == deep["class"] for e in errors):
        errors.append(deep)
    if errors or occurred_at is None or schema is None or not isinstance(data, dict):
        return Rejection(index, shown_id, errors)
    return ValidEvent(index, str(source), str(event_id), str(event_type), occurred_at, data, record)


def _check_fields(schema: Mapping[str, Field], data: Mapping[str, Any]) -> list[dict[str, str]]:
    errors = []
    for name, spec in schema.items():
        if name not in data:
            if spec.required:
                errors.append(r.REQUIRED.at(f"data.{name}"))
            continue
        value = data[name]
        if value is None:
            if not spec.nullable:
                errors.append(r.NOT_NULL.at(f"data.{name}"))
            continue
        problem = spec.check(value)
        if problem:
            reason, values = problem
            errors.append(reason.at(f"data.{name}", **values))
    return errors
