"""Reading a batch of dossier events: only the fields used; a malformed event is skipped and
counted, never fails the batch; a body that is not the contract raises (retried, then parked)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from services.reporting.domain.dossier_batch import read_batch

AT = "2026-10-05T09:00:00+07:00"


def event(**changes: object) -> dict[str, object]:
    e: dict[str, object] = {
        "source": "tms-1",
        "event_id": "e1",
        "type": "dossier.received",
        "occurred_at": AT,
        "data": {"dossier_id": "HS-1", "unit_code": "P01", "note": "văn bản"},
    }
    e.update(changes)
    return e


def test_a_good_event_is_read_with_its_source_time_and_data() -> None:
    batch = read_batch(orjson.dumps({"events": [event()], "accepted_at": "2026-10-05T02:00:01Z"}))
    assert batch.skipped == 0 and batch.accepted_at == datetime(2026, 10, 5, 2, 0, 1, tzinfo=UTC)
    ((source, e),) = batch.events
    assert source == "tms-1" and e.dossier_id == "HS-1" and e.type == "dossier.received"
    assert e.occurred_at == datetime(2026, 10, 5, 2, 0, tzinfo=UTC)
    assert e.data["unit_code"] == "P01"
    assert read_batch(b'{"events": []}').accepted_at is None


@pytest.mark.parametrize(
    "bad",
    [
        "not an object",
        event(source=7),
        event(type="procedure.upserted"),
        event(type=None),
        event(occurred_at="2026-10-05T09:00:00"),  # no offset
        event(occurred_at="yesterday"),
        event(occurred_at=None),
        event(data=["HS-1"]),
        event(data={"unit_code": "P01"}),
        event(data={"dossier_id": ""}),
        event(data={"dossier_id": 12}),
        {"type": "dossier.received"},
    ],
)
def test_a_malformed_event_is_skipped_and_counted_the_rest_kept(bad: object) -> None:
    batch = read_batch(orjson.dumps({"events": [event(), bad, event(event_id="e2")]}))
    assert batch.skipped == 1
    assert len(batch.events) == 2


@pytest.mark.parametrize("body", [b"{}", b'{"events": {}}', b'{"events": [], "accepted_at": 5}', b"[not json"])
def test_a_body_that_is_not_the_contract_raises(body: bytes) -> None:
    with pytest.raises((KeyError, ValueError)):
        read_batch(body)
