"""Reading an events request body: one object, a JSON array, or NDJSON."""

from __future__ import annotations

from typing import Any

import orjson

from services.ingest.domain.validation import UnparsableRecord
from shared.web import ApiError


def parse_events_body(body: bytes, content_type: str) -> list[Any]:
    if not body.strip():
        raise ApiError(400, "the request body is empty", details=[{"field": "body", "reason": "no events"}])
    if "ndjson" in content_type or "jsonl" in content_type:
        lines = body.splitlines()
        try:  # the common case: every line parses (one comprehension, no per-line bookkeeping)
            return [orjson.loads(line) for line in lines if line.strip()]
        except orjson.JSONDecodeError:
            pass
        records: list[Any] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                records.append(UnparsableRecord(f"invalid JSON: {exc}"))
        return records
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400, "the request body is not valid JSON", details=[{"field": "body", "reason": str(exc)}]
        ) from exc
    if isinstance(parsed, dict):
        return [parsed]
    if isinstance(parsed, list):
        return parsed
    raise ApiError(
        400,
        "send one event object, an array of events, or NDJSON",
        details=[{"field": "body", "reason": "must be an object or an array"}],
    )
