"""Feedback's reading of ingest's dossier events: the latest unit, the receiver, malformed events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from services.feedback.domain.dossiers import merged_moves, unit_moves


def event(dossier: Any, kind: str, unit: Any, at: Any = "2026-10-05T08:00:00+07:00") -> dict[str, Any]:
    field = "unit_code" if kind == "dossier.received" else "to_unit_code"
    return {"source": "s", "event_id": f"{dossier}:{kind}:{at}", "type": kind, "occurred_at": at,
            "data": {"dossier_id": dossier, field: unit}}  # fmt: skip


def body(*events: Any) -> bytes:
    return orjson.dumps({"events": list(events), "accepted_at": None})


def test_the_latest_event_wins_and_the_first_receiver_owns() -> None:
    moves = unit_moves(
        body(
            event("A", "dossier.transferred", "P03", "2026-10-07T08:00:00+07:00"),
            event("A", "dossier.received", "P01", "2026-10-05T08:00:00+07:00"),
            event("A", "dossier.transferred", "P02", "2026-10-06T08:00:00+07:00"),
            event("A", "dossier.received", "P09", "2026-10-05T09:00:00+07:00"),
            {"type": "dossier.completed", "occurred_at": "x", "data": {"dossier_id": "A"}},
        )
    )
    assert moves.latest == {"A": (datetime.fromisoformat("2026-10-07T08:00:00+07:00"), "P03")}
    assert moves.receivers == {"A": "P01"}
    assert moves.first_owners == {"A": "P01"}
    assert moves.skipped == 0


def test_merged_messages_keep_the_first_messages_owner() -> None:
    """With no receipt, a message's owner is its latest unit; merged, the first message's stays."""
    first = unit_moves(body(event("A", "dossier.transferred", "P01", "2026-10-06T08:00:00+07:00")))
    second = unit_moves(
        body(
            event("A", "dossier.transferred", "P28", "2026-10-08T08:00:00+07:00"),
            event("A", "dossier.received", "P29", "2026-10-05T08:00:00+07:00"),
        )
    )
    assert (first.first_owners, second.first_owners) == ({"A": "P01"}, {"A": "P29"})
    merged = merged_moves([first, second])
    assert (merged.first_owners, merged.receivers, merged.latest["A"][1]) == ({"A": "P01"}, {"A": "P29"}, "P28")


def test_the_same_instant_in_other_offsets_is_compared_as_an_instant() -> None:
    moves = unit_moves(
        body(
            event("B", "dossier.received", "P01", "2026-10-05T08:00:00+07:00"),
            event("B", "dossier.transferred", "P02", "2026-10-05T02:00:00+00:00"),
        )
    )
    # Same instant: the larger (time, code) wins, as the batch's order may not be the events' order.
    assert moves.latest["B"][1] == "P02"


@pytest.mark.parametrize(
    "bad",
    [
        "not an object",
        ["a", "list"],
        {"type": "dossier.received", "occurred_at": "2026-10-05T08:00:00+07:00"},
        {"type": "dossier.received", "occurred_at": "2026-10-05T08:00:00+07:00", "data": ["x"]},
        {"type": ["dossier.received"], "occurred_at": "2026-10-05T08:00:00+07:00", "data": {}},
        event(7, "dossier.received", "P01"),
        event("C", "dossier.received", None),
        event("C", "dossier.transferred", {"code": "P01"}),
        event("C", "dossier.received", "P01", at="yesterday"),
        event("C", "dossier.received", "P01", at=20261005),
        event("C", "dossier.received", "P01", at="2026-10-05T08:00:00"),  # no offset: not an instant
        {k: v for k, v in event("C", "dossier.received", "P01").items() if k != "occurred_at"},
    ],
)
def test_a_malformed_event_is_skipped_and_counted(bad: Any) -> None:
    moves = unit_moves(body(bad, event("D", "dossier.received", "P05")))
    assert moves.skipped == 1
    assert moves.latest == {"D": (datetime.fromisoformat("2026-10-05T08:00:00+07:00"), "P05")}
    assert moves.receivers == {"D": "P05"}


@pytest.mark.parametrize("raw", [b"not json", b'{"no_events": []}', b'{"events": {"a": 1}}', b"[]"])
def test_a_body_that_is_not_the_contract_raises(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        unit_moves(raw)
