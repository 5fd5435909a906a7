"""Every reason ingest gives for rejecting a record: one catalogue, read by the code, the metrics
and ``docs/integration.md`` (a test checks that the document lists each of them).

A reason has a short class (``range``, ``unknown``, …: the metric label, never a value) and a
text for people, which may name the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.text import DIRECTION_CONTROLS_NAMED


@dataclass(frozen=True)
class Reason:
    cls: str
    text: str

    def at(self, field: str, **values: Any) -> dict[str, str]:
        """The error entry ``{field, reason}`` (plus its class, dropped from the answer)."""
        return {"field": field, "reason": self.text.format(**values) if values else self.text, "class": self.cls}


CATALOGUE: list[Reason] = []


def _reason(cls: str, text: str) -> Reason:
    reason = Reason(cls, text)
    CATALOGUE.append(reason)
    return reason


# Shape of the record
NOT_OBJECT = _reason("type", "must be a JSON object")
UNPARSABLE = _reason("json", "invalid JSON: {detail}")
EVENT_ID = _reason("format", "must be 1–128 printable ASCII characters")
SOURCE = _reason("format", "must be the sending system's name (no control characters)")
UNKNOWN_TYPE = _reason("unknown", "unknown event type; known: {known}")
REQUIRED = _reason("required", "is required")
NOT_NULL = _reason("null", "must not be null")
TOO_DEEP = _reason("depth", "is nested more than {limit} levels deep")
NUL = _reason("control", "contains a NUL character (\\u0000), which cannot be stored")

# Values
STRING = _reason("type", "must be a string")
EMPTY = _reason("empty", "must not be empty")
TOO_LONG = _reason("length", "must be at most {limit} characters")
CONTROL = _reason("control", f"must not contain control characters or {DIRECTION_CONTROLS_NAMED}")
DOSSIER_ID = _reason(
    "format",
    "must be 1–128 printable ASCII characters without spaces (the rating form accepts no other dossier id)",
)
INTEGER = _reason("type", "must be an integer")
MINIMUM = _reason("range", "must be ≥ {minimum}")
BOOLEAN = _reason("type", "must be true or false")
ENUM = _reason("enum", "must be one of {allowed}")
LEVELS = _reason("enum", "must be a non-empty list of unit levels: {allowed}")
DATETIME = _reason("format", "must be an RFC 3339 time with an offset, e.g. 2026-10-05T08:31:00+07:00")
DATE = _reason("format", "must be a date YYYY-MM-DD")

# Times (the ranges are documented in docs/integration.md)
FUTURE = _reason("future", "is more than a day in the future")
TOO_EARLY = _reason("range", "is before {earliest}: SQI keeps no events that old")
DUE_BEFORE_RECEIPT = _reason("range", "must not be before the dossier's receipt (occurred_at)")
DUE_TOO_FAR = _reason("range", "is more than {years} years after occurred_at")
DATE_RANGE = _reason("range", "must lie between {earliest} and {years} years after occurred_at")

# Reference data and rights (checked against the unit tree and the catalogue)
UNKNOWN_UNIT = _reason("unknown", "unknown unit code '{code}'")
UNKNOWN_PROCEDURE = _reason("unknown", "unknown procedure code '{code}'")
UNIT_NOT_YET = _reason("validity", "unit {code} exists from {valid_from}; before that use {others}")
UNIT_CLOSED = _reason("validity", "unit {code} exists until {valid_to}; after that use {others}")
FORBIDDEN_SOURCE = _reason("forbidden", "not permitted for this API key (key's source is {source})")
FORBIDDEN_UNIT = _reason("forbidden", "not permitted for this API key: unit {code}")
FORBIDDEN_CATALOGUE = _reason(
    "forbidden", "not permitted for this API key: only a catalogue key may publish procedures"
)
FORBIDDEN_DOSSIER = _reason(
    "forbidden", "not permitted for this API key: the dossier was received by another source or unit"
)
TAKEOVER = _reason("conflict", "conflict: this dossier was already received by another source or unit; it stays theirs")
CONFLICT = _reason("conflict", "conflict: this id was already accepted with a different body; the first version stays")


def label(error: dict[str, str]) -> str:
    """The metric label of one error: its field and class (``data.due_at:range``), never a value."""
    return f"{error['field']}:{error.get('class', 'invalid')}"


def markdown_table() -> str:
    """The catalogue as docs/integration.md shows it (a test keeps the two equal).

    Regenerate with ``.venv/bin/python -m services.ingest.domain.reasons``.
    """
    lines = ["| class | reason (`{…}` is filled in with the value at fault) |", "|---|---|"]
    lines += [f"| `{r.cls}` | {r.text.replace('|', '/')} |" for r in CATALOGUE]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
