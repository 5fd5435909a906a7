"""The event stream: reproducible, valid by events.md, seasonal, with the configured anomalies."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any

import orjson

from sim.clock import DAY, day_of
from sim.generate import BURST_CLIENT, Anomalies, Generator

from .conftest import OCT_END, run

# -- a tiny checker of events.md ---------------------------------------------------------------
STR, INT, BOOL, DT, DATE = "str", "int", "bool", "datetime", "date"
ENUMS = {
    "channel": {"counter", "online", "post"},
    "online_level": {"none", "partial", "full"},
    "online_level_offered": {"none", "partial", "full"},
    "applicant_type": {"citizen", "business"},
    "target": {"citizen", "business", "both"},
    "outcome": {"approved", "refused"},
}
SCHEMAS: dict[str, dict[str, tuple[str, bool]]] = {  # field -> (kind, nullable)
    "procedure.upserted": {
        "procedure_code": (STR, False),
        "name": (STR, False),
        "field": (STR, False),
        "levels": ("levels", False),
        "time_limit_wd": (INT, True),
        "online_level_offered": ("enum", False),
        "has_fee": (BOOL, False),
        "returns_document": (BOOL, False),
        "target": ("enum", False),
        "complete_listing": (BOOL, False),
        "legal_effective_date": (DATE, True),
        "published_decision_date": (DATE, True),
        "publicized_at": (DT, True),
    },
    "dossier.received": {
        "dossier_id": (STR, False),
        "procedure_code": (STR, False),
        "unit_code": (STR, False),
        "due_at": (DT, True),
        "channel": ("enum", False),
        "online_level": ("enum", False),
        "applicant_type": ("enum", False),
        "officer_id": (STR, False),
        "population_data_used": (BOOL, False),
        "personal_store_used": (BOOL, False),
    },
    "dossier.supplement_requested": {"dossier_id": (STR, False), "reason": (STR, False), "officer_id": (STR, False)},
    "dossier.supplement_received": {"dossier_id": (STR, False), "due_at": (DT, True)},
    "dossier.transferred": {"dossier_id": (STR, False), "to_unit_code": (STR, False), "officer_id": (STR, False)},
    "dossier.components_digitized": {
        "dossier_id": (STR, False),
        "components": ("int1", False),
        "reused": (INT, False),
        "from_personal_store": (INT, False),
    },
    "dossier.completed": {
        "dossier_id": (STR, False),
        "outcome": ("enum", False),
        "result_digitized": (BOOL, False),
        "officer_id": (STR, False),
    },
    "dossier.result_returned": {"dossier_id": (STR, False)},
    "dossier.withdrawn": {"dossier_id": (STR, False)},
    "dossier.paid": {"dossier_id": (STR, False), "amount_vnd": (INT, False), "channel": ("pay", False)},
    "dossier.synced": {"dossier_id": (STR, False)},
}
RFC3339_VN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00$")


def _ok(kind: str, name: str, v: Any) -> bool:
    if kind == STR:
        return isinstance(v, str) and bool(v.strip())
    if kind in (INT, "int1"):
        return isinstance(v, int) and not isinstance(v, bool) and v >= (1 if kind == "int1" else 0)
    if kind == BOOL:
        return isinstance(v, bool)
    if kind == DT:
        return isinstance(v, str) and bool(RFC3339_VN.match(v)) and datetime.fromisoformat(v) is not None
    if kind == DATE:
        return isinstance(v, str) and date.fromisoformat(v) is not None
    if kind == "levels":
        return isinstance(v, list) and bool(v) and set(v) <= {"central", "province", "local"}
    if kind == "pay":
        return v in {"national_portal", "gateway", "counter"}
    return v in ENUMS[name]


def check_event(ev: dict[str, Any], units: set[str], procs: set[str]) -> list[str]:
    errors = []
    if set(ev) != {"event_id", "type", "occurred_at", "source", "data"}:
        errors.append(f"envelope keys {sorted(ev)}")
    eid = ev.get("event_id")
    if not (isinstance(eid, str) and 1 <= len(eid) <= 128 and eid.isascii() and eid.isprintable()):
        errors.append("event_id")
    if not (isinstance(ev.get("occurred_at"), str) and RFC3339_VN.match(ev["occurred_at"])):
        errors.append("occurred_at")
    schema = SCHEMAS.get(ev.get("type", ""))
    if schema is None:
        return [*errors, f"type {ev.get('type')}"]
    data = ev["data"]
    for name, (kind, nullable) in schema.items():
        if name not in data:
            errors.append(f"missing {name}")
        elif not ((nullable and data[name] is None) or _ok(kind, name, data[name])):
            errors.append(f"bad {name}={data[name]!r}")
    for name in ("unit_code", "to_unit_code"):
        if name in data and data[name] not in units:
            errors.append(f"unknown unit {data[name]}")
    if ev["type"] == "dossier.received" and data["procedure_code"] not in procs:
        errors.append("unknown procedure")
    return errors


# -- tests --------------------------------------------------------------------------------------
def test_every_event_matches_events_md(october: tuple[Generator, list[dict]]) -> None:
    gen, events = october
    units = {o.code for o in gen.world.offices}
    procs = {p.code for p in gen.world.procedures}
    bad = [(ev["event_id"], errs) for ev in events if (errs := check_event(ev, units, procs))]
    assert not bad, bad[:5]
    keys = [(ev["source"], ev["event_id"]) for ev in events]
    assert len(keys) == len(set(keys)), "event ids must be unique per source"
    assert {t for ev in events if (t := ev["type"])} >= set(SCHEMAS) - {"dossier.transferred"}


def test_catalogue_comes_first_and_sources_match_units(october: tuple[Generator, list[dict]]) -> None:
    gen, events = october
    n = len(gen.world.procedures)
    assert all(ev["type"] == "procedure.upserted" for ev in events[:n])
    for ev in events:
        if ev["type"] == "dossier.received":
            assert ev["source"] == gen.world.office(ev["data"]["unit_code"]).source


def test_same_seed_byte_identical_different_seed_different() -> None:
    _, a = run(seed=3, scale=0.01)
    _, b = run(seed=3, scale=0.01)
    _, c = run(seed=4, scale=0.01)
    assert b"\n".join(a) == b"\n".join(b)
    assert b"\n".join(a) != b"\n".join(c)


def test_overlapping_windows_send_identical_events() -> None:
    """A day's dossiers do not depend on the window: re-runs give duplicates, never conflicts."""
    start2 = day_of(date(2026, 10, 11)) * DAY
    _, full = run(seed=5, scale=0.01, anomalies=Anomalies.none())
    _, later = run(seed=5, scale=0.01, start=start2, anomalies=Anomalies.none())
    by_id = {orjson.loads(x)["event_id"]: x for x in full}
    dossier_lines = [x for x in later if b'"procedure.upserted"' not in x]
    assert dossier_lines and all(by_id[orjson.loads(x)["event_id"]] == x for x in dossier_lines)


def test_a_later_end_only_adds_events() -> None:
    """Re-running "ending now" later resends the earlier events byte for byte (duplicates)."""
    early_end = day_of(date(2026, 10, 20)) * DAY + 12 * 3600
    _, early = run(seed=6, scale=0.02, end=early_end)
    _, full = run(seed=6, scale=0.02)
    full_set = set(full)
    missing = [x for x in early if x not in full_set and b'"procedure.upserted"' not in x]
    assert not missing, missing[:3]


def test_monthly_declarations_peak_before_the_20th() -> None:
    start = day_of(date(2026, 5, 1)) * DAY
    gen, lines = run(seed=11, scale=0.03, start=start, end=OCT_END, anomalies=Anomalies.none())
    per_day: Counter[int] = Counter()
    for x in lines:
        ev = orjson.loads(x)
        if ev["type"] == "dossier.received" and ev["event_id"].endswith(":rcv"):
            per_day[day_of(date.fromisoformat(ev["occurred_at"][:10]))] += 1
    by_dom: dict[str, list[int]] = defaultdict(list)
    for d in range(start // DAY, OCT_END // DAY + 1):
        if gen.clock.is_wd(d):
            dom = date.fromordinal(date(1970, 1, 1).toordinal() + d).day
            if 16 <= dom <= 20:
                by_dom["peak"].append(per_day[d])
            elif 6 <= dom <= 12:
                by_dom["mid"].append(per_day[d])
    peak = sum(by_dom["peak"]) / len(by_dom["peak"])
    mid = sum(by_dom["mid"]) / len(by_dom["mid"])
    assert peak > 1.3 * mid, (peak, mid)
    sundays = [per_day[d] for d in range(start // DAY, OCT_END // DAY) if not gen.clock.is_wd(d)]
    assert sum(sundays) / len(sundays) < 0.1 * mid


def test_anomalies_present_when_configured(october: tuple[Generator, list[dict]]) -> None:
    gen, events = october
    key = gen.key.anomalies
    reopened = set(key["reopened_dossiers"])
    assert reopened
    assert reopened == {ev["data"]["dossier_id"] for ev in events if ev["event_id"].endswith(":rcv2")}
    burst = key["rating_burst"]
    items = [i for i in gen.feedback if i.get("burst")]
    assert len(items) == 12 and {i["client"] for i in items} == {BURST_CLIENT} == {burst["client"]}
    assert all(i["body"]["level"] == "very_satisfied" for i in items)
    assert max(i["t"] for i in items) - min(i["t"] for i in items) < 3600
    silent = key["silent_source"]
    assert len(silent["dates"]) == 1
    assert not [ev for ev in events if ev["source"] == silent["source"] and ev["occurred_at"][:10] in silent["dates"]]
    assert any(ev["source"] == silent["source"] for ev in events)


def test_no_anomalies_when_switched_off() -> None:
    gen, lines = run(seed=7, scale=0.01, feedback=True, anomalies=Anomalies.none())
    assert not gen.key.anomalies["reopened_dossiers"]
    assert "rating_burst" not in gen.key.anomalies and "silent_source" not in gen.key.anomalies
    assert not any(b":rcv2" in x for x in lines)


def test_feedback_only_when_switched_on(october: tuple[Generator, list[dict]]) -> None:
    gen, _ = october
    kinds = Counter(i["kind"] for i in gen.feedback)
    assert kinds["rating"] > 0 and kinds["petition"] > 0
    assert any("again_of" in i for i in gen.feedback)
    off, _ = run(seed=7, scale=0.01)
    assert off.feedback == []


def test_answer_key_matches_the_stream(october: tuple[Generator, list[dict]]) -> None:
    gen, events = october
    types = Counter(ev["type"] for ev in events)
    units = gen.key.units
    total = Counter[str]()
    for months in units.values():
        for counts in months.values():
            total.update(counts)
    assert total["received"] == types["dossier.received"] - len(gen.key.anomalies["reopened_dossiers"])
    assert total["completed"] == types["dossier.completed"]
    assert total["withdrawn"] == types["dossier.withdrawn"]
    assert total["handled_synced"] == types["dossier.synced"]
    assert 0 < total["handled_overdue"] < 0.3 * total["handled"]
    online = sum(
        1
        for ev in events
        if ev["type"] == "dossier.received" and ev["data"]["channel"] == "online" and ev["event_id"].endswith(":rcv")
    )
    assert total["received_online"] == online
    paid_online = {
        ev["data"]["dossier_id"] for ev in events if ev["type"] == "dossier.paid" and ev["data"]["channel"] != "counter"
    }
    assert total["paid_online"] == len(paid_online)
    zero = {ev["data"]["dossier_id"] for ev in events if ev["type"] == "dossier.paid" and ev["data"]["amount_vnd"] == 0}
    assert zero and total["received_fee_payable"] == total["received_fee"] - len(zero)
    ct = gen.key.subtree()["CT"]["2026-10"]
    assert ct["received"] == total["received"]
    doc = orjson.loads(gen.key.to_json({"seed": 7}))
    assert doc["units"] and doc["subtree"]["P01"]["2026-10"]["handled"] > 0


def test_offices_traits_move_their_numbers(october: tuple[Generator, list[dict]]) -> None:
    gen, _ = october
    sub = {o.code: gen.key.units.get(o.code, {}).get("2026-10") for o in gen.world.local_offices()}

    def ratio(trait: str, num: str, den: str, flag: bool) -> float:
        n = d = 0
        for o in gen.world.local_offices():
            c = sub[o.code]
            if c and (trait in o.traits()) == flag:
                n, d = n + c[num], d + c[den]
        return n / d

    assert ratio("backlog_prone", "handled_overdue", "handled", True) > ratio(
        "backlog_prone", "handled_overdue", "handled", False
    )
    assert ratio("low_online", "received_online", "received", True) < ratio(
        "low_online", "received_online", "received", False
    )
    assert ratio("sync_lag", "handled_synced", "handled", True) < ratio("sync_lag", "handled_synced", "handled", False)


def test_one_small_month_is_quick() -> None:
    t = time.perf_counter()
    _, lines = run(seed=9, scale=0.05)
    elapsed = time.perf_counter() - t
    assert len(lines) > 40_000
    assert elapsed < 10, f"{len(lines)} events took {elapsed:.1f} s"
