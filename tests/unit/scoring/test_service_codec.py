"""Stored dossier facts round-trip exactly; dirty periods cover months, quarters and years."""

from __future__ import annotations

from dataclasses import replace

import orjson

from services.scoring.adapters.codec import facts_from_json, facts_json, facts_to_json_slow
from services.scoring.domain import fold_dossier
from services.scoring.domain.period_labels import months_between

from .helpers import PROCS, completed, ev, received, t


def test_facts_round_trip() -> None:
    events = [
        received(t(10, 5)),
        ev("supplement_requested", t(10, 6), reason="thiếu tờ khai", officer_id="O3"),
        ev("supplement_received", t(10, 8)),
        ev("components_digitized", t(10, 8), components=2, reused=1, from_personal_store=1),
        ev("paid", t(10, 9), amount_vnd=1000, channel="national_portal"),
        ev("transferred", t(10, 9), to_unit_code="U2", officer_id="O4"),
        completed(t(10, 12)),
        ev("synced", t(10, 12)),
    ]
    facts = fold_dossier("D1", events, PROCS)
    assert facts is not None
    stored = orjson.loads(facts_json(facts))
    assert stored == facts_to_json_slow(facts)  # the stored text: datetimes as isoformat writes them
    back = facts_from_json(stored, PROCS)
    assert back == replace(facts, clock=None)


def test_months_between() -> None:
    assert months_between(t(11, 20), t(1, 5, year=2027)) == {
        "2026-11",
        "2026-12",
        "2026-Q4",
        "2026",
        "2027-01",
        "2027-Q1",
        "2027",
    }
