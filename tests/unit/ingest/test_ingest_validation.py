"""The fast path of validation never accepts what the careful path refuses, and every bound is named."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.ingest.domain import reasons
from services.ingest.domain.validation import Rejection, ValidEvent, _validate_slowly, validate_record

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
GOOD: dict[str, Any] = {
    "event_id": "e-1",
    "type": "dossier.received",
    "occurred_at": "2026-10-05T08:31:00+07:00",
    "source": "tms",
    "data": {
        "dossier_id": "HS-1",
        "procedure_code": "T.DKT.01",
        "unit_code": "P01",
        "due_at": "2026-10-08T17:00:00+07:00",
        "channel": "online",
        "online_level": "full",
        "applicant_type": "citizen",
        "officer_id": "O-1",
    },
}


def with_(path: str, value: Any) -> dict[str, Any]:
    record = copy.deepcopy(GOOD)
    target = record
    *parents, last = path.split(".")
    for name in parents:
        target = target[name]
    target[last] = value
    return record


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


CASES = [
    ("occurred_at", "0001-01-01T00:00:00+07:00", "occurred_at"),
    ("occurred_at", "9999-12-31T23:59:59-07:00", "occurred_at"),
    ("occurred_at", "2014-12-31T23:59:59+07:00", "occurred_at"),
    ("data.due_at", "0001-01-01T00:00:00+07:00", "data.due_at"),
    ("data.due_at", "9999-12-31T23:59:59-07:00", "data.due_at"),
    ("data.due_at", "2031-10-09T00:00:00+07:00", "data.due_at"),
    ("data.due_at", "2026-10-05T08:30:59+07:00", "data.due_at"),
    ("data.dossier_id", "HS\x00", "data.dossier_id"),
    ("data.dossier_id", "HS 1", "data.dossier_id"),
    ("data.dossier_id", "HS-1\n", "data.dossier_id"),
    ("data.dossier_id", "Hồ-sơ", "data.dossier_id"),
    ("data.officer_id", "O\x07", "data.officer_id"),
    ("data.unit_code", "P01\x00", "data.unit_code"),
    ("data.extra", {"k\x00": 1}, "data"),
    ("data.extra", deep(16), "data"),
    ("source", "tms\x00", "source"),
    ("event_id", "e-1\n", "event_id"),
]


@pytest.mark.parametrize(("path", "value", "field"), CASES)
def test_both_paths_refuse_with_the_field(path: str, value: Any, field: str) -> None:
    record = with_(path, value)
    fast = validate_record(0, record, now=NOW, future_tolerance=timedelta(days=1))
    slow = _validate_slowly(0, record, now=NOW, future_tolerance=timedelta(days=1))
    assert isinstance(fast, Rejection) and isinstance(slow, Rejection)
    assert field in [e["field"] for e in fast.errors], fast.errors
    assert all(e["class"] in {r.cls for r in reasons.CATALOGUE} for e in fast.errors)


def test_the_bounds_themselves_are_accepted() -> None:
    for path, value in (
        ("occurred_at", "2015-01-01T00:00:00+07:00"),
        ("data.due_at", "2026-10-05T08:31:00+07:00"),
        ("data.extra", deep(15)),
        ("data.reason_free_text", "dòng một\ndòng hai"),
    ):
        record = with_(path, value)
        if path == "occurred_at":
            record["data"]["due_at"] = None
        assert isinstance(validate_record(0, record, now=NOW, future_tolerance=timedelta(days=1)), ValidEvent), path


def test_free_text_keeps_line_breaks_but_not_nul() -> None:
    record = {
        "event_id": "e-2",
        "type": "dossier.supplement_requested",
        "occurred_at": "2026-10-05T08:31:00+07:00",
        "source": "tms",
        "data": {"dossier_id": "HS-1", "reason": "Thiếu giấy tờ:\n- bản sao"},
    }
    assert isinstance(validate_record(0, record, now=NOW, future_tolerance=timedelta(days=1)), ValidEvent)
    record["data"]["reason"] = "a\x00b"
    rejected = validate_record(0, record, now=NOW, future_tolerance=timedelta(days=1))
    assert isinstance(rejected, Rejection) and rejected.errors[0]["field"] == "data.reason"
    assert "class" not in rejected.as_json()["errors"][0]


# The explicit direction controls: an override (U+202E) turns the rest of a printed line around.
DIRECTION_CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize("control", DIRECTION_CONTROLS)
@pytest.mark.parametrize(
    ("event_type", "name", "value"),
    [
        ("procedure.upserted", "name", "Đăng ký thuế lần đầu{}"),
        ("procedure.upserted", "field", "{}Đăng ký thuế"),
        ("procedure.upserted", "procedure_code", "1.007622{}"),
        ("dossier.supplement_requested", "reason", "Thiếu giấy tờ:\n{}- bản sao"),
        ("dossier.supplement_requested", "officer_id", "can-bo{}"),
        ("dossier.received", "unit_code", "P01{}"),
        ("dossier.transferred", "to_unit_code", "{}P01.L01"),
    ],
)
def test_direction_controls_are_refused_in_names_codes_and_free_text(
    control: str, event_type: str, name: str, value: str
) -> None:
    data: dict[str, Any] = {
        "procedure.upserted": {
            "procedure_code": "1.007622",
            "name": "Đăng ký thuế lần đầu",
            "field": "Đăng ký thuế",
            "levels": ["province"],
            "time_limit_wd": 3,
            "online_level_offered": "full",
            "has_fee": False,
            "returns_document": True,
            "target": "both",
            "complete_listing": True,
        },
        "dossier.supplement_requested": {"dossier_id": "HS-1", "reason": "Thiếu giấy tờ", "officer_id": "O-1"},
        "dossier.received": copy.deepcopy(GOOD["data"]),
        "dossier.transferred": {"dossier_id": "HS-1", "to_unit_code": "P01.L01", "officer_id": "O-1"},
    }[event_type]
    record = {**copy.deepcopy(GOOD), "type": event_type, "data": data}
    assert isinstance(validate_record(0, record, now=NOW, future_tolerance=timedelta(days=1)), ValidEvent)
    record["data"][name] = value.format(control)
    for rejected in (
        validate_record(0, record, now=NOW, future_tolerance=timedelta(days=1)),
        _validate_slowly(0, record, now=NOW, future_tolerance=timedelta(days=1)),
    ):
        assert isinstance(rejected, Rejection)
        assert rejected.as_json()["errors"] == [{"field": f"data.{name}", "reason": reasons.CONTROL.text}]
    assert "U+202E" in reasons.CONTROL.text  # the reason names what it refuses


def test_a_direction_control_in_the_source_is_refused() -> None:
    rejected = validate_record(0, with_("source", "tms\u202e"), now=NOW, future_tolerance=timedelta(days=1))
    assert isinstance(rejected, Rejection) and "source" in [e["field"] for e in rejected.errors]
