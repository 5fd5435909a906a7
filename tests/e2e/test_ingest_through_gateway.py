"""Events in through the gateway: batches, idempotency, conflicts and every kind of bad input."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from shared.calendar import VN_TZ

pytestmark = pytest.mark.e2e

# Events are dated in the last complete month: never ahead of the clock, and after the month the
# simulated-month test checks exactly (GOOD's dossiers stay open: they are handled in every later month).
MONTH = f"{datetime.now(VN_TZ).date().replace(day=1) - timedelta(days=1):%Y-%m}"

NDJSON = {"content-type": "application/x-ndjson"}


def dossier_events(source: str, prefix: str, dossiers: int, unit: str = "P01") -> list[dict[str, Any]]:
    """Five events per dossier, every lifecycle kind the scores need."""
    events = []
    for i in range(dossiers):
        d = f"{prefix}-{i:05d}"

        def ev(kind: str, at: str, data: dict[str, Any], d: str = d) -> dict[str, Any]:
            return {
                "event_id": f"{d}:{kind}",
                "type": kind,
                "occurred_at": at,
                "source": source,
                "data": {"dossier_id": d, **data},
            }

        events += [
            ev(
                "dossier.received",
                f"{MONTH}-05T08:31:00+07:00",
                {
                    "procedure_code": "T.DKT.01",
                    "unit_code": unit,
                    "due_at": None,
                    "channel": "online",
                    "online_level": "full",
                    "applicant_type": "business",
                    "officer_id": "P01.O1",
                    "population_data_used": i % 2 == 0,
                },
            ),
            ev("dossier.components_digitized", f"{MONTH}-05T09:00:00+07:00", {"components": 2, "reused": 1}),
            ev("dossier.paid", f"{MONTH}-05T09:10:00+07:00", {"amount_vnd": 50_000, "channel": "gateway"}),
            ev(
                "dossier.completed",
                f"{MONTH}-07T10:00:00+07:00",
                {"outcome": "approved", "result_digitized": True, "officer_id": "P01.O2"},
            ),
            ev("dossier.synced", f"{MONTH}-07T10:05:00+07:00", {}),
        ]
    return events


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(e) for e in events)


def test_ten_thousand_events_once_then_duplicates_then_conflict(gateway: httpx.Client, make_key) -> None:  # type: ignore[no-untyped-def]
    key = make_key("tms-bulk", ["P01"])
    auth = {"Authorization": f"Bearer {key}", **NDJSON}
    events = dossier_events("tms-bulk", f"BULK{uuid.uuid4().hex[:6]}", 2_000)
    assert len(events) == 10_000

    first = gateway.post("/api/v1/events", content=ndjson(events), headers=auth)
    assert first.status_code == 200, first.text[:500]
    body = first.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (10_000, 0, [])
    assert len(body["rating_codes"]) == 2_000
    assert all(len(code) == 8 for code in body["rating_codes"].values())

    again = gateway.post("/api/v1/events", content=ndjson(events), headers=auth).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 10_000, [])
    # A resend answers the codes again: the first answer may never have reached the sender.
    assert again["rating_codes"] == body["rating_codes"]

    changed = dict(events[3], data={**events[3]["data"], "result_digitized": False})
    conflict = gateway.post("/api/v1/events", json=[changed, events[0]], headers={"Authorization": f"Bearer {key}"})
    assert conflict.status_code == 200  # the duplicate beside it is not a rejection
    answer = conflict.json()
    assert answer["accepted"] == 0 and answer["duplicates"] == 1
    assert answer["rejected"][0]["index"] == 0
    assert answer["rejected"][0]["errors"][0]["field"] == "event_id"
    assert "conflict" in answer["rejected"][0]["errors"][0]["reason"]

    dossier_id = events[0]["data"]["dossier_id"]
    reprint = gateway.get(f"/api/v1/dossiers/{dossier_id}/rating-code", headers={"Authorization": f"Bearer {key}"})
    assert reprint.status_code == 200
    assert reprint.json() == {"dossier_id": dossier_id, "rating_code": body["rating_codes"][dossier_id]}


GOOD = {
    "event_id": "good-1",
    "type": "dossier.received",
    "occurred_at": f"{MONTH}-05T08:31:00+07:00",
    "source": "tms-bad",
    "data": {
        "dossier_id": "BAD-OK-1",
        "procedure_code": "T.DKT.01",
        "unit_code": "P01",
        "channel": "counter",
        "online_level": "none",
        "applicant_type": "citizen",
    },
}


def variant(**changes: Any) -> dict[str, Any]:
    event = orjson.loads(orjson.dumps(GOOD))
    data_changes = changes.pop("data", {})
    event.update(changes)
    for name, value in data_changes.items():
        if value is ...:
            event["data"].pop(name)
        else:
            event["data"][name] = value
    return event


BAD_RECORDS = [
    ("unknown type", variant(type="dossier.teleported"), "type"),
    ("missing type", {k: v for k, v in GOOD.items() if k != "type"}, "type"),
    ("no offset", variant(occurred_at=f"{MONTH}-05T08:31:00"), "occurred_at"),
    ("not a time", variant(occurred_at="yesterday"), "occurred_at"),
    ("future", variant(occurred_at="2099-01-01T00:00:00+07:00"), "occurred_at"),
    ("empty event id", variant(event_id=""), "event_id"),
    ("long event id", variant(event_id="x" * 129), "event_id"),
    ("non-ascii event id", variant(event_id="mã-hồ-sơ"), "event_id"),
    ("data not object", {**GOOD, "data": []}, "data"),
    ("missing dossier id", variant(data={"dossier_id": ...}), "data.dossier_id"),
    ("wrong channel", variant(data={"channel": "fax"}), "data.channel"),
    (
        "bool as string",
        variant(type="dossier.completed", data={"outcome": "approved", "result_digitized": "yes"}),
        "data.result_digitized",
    ),
    ("negative amount", variant(type="dossier.paid", data={"amount_vnd": -5, "channel": "gateway"}), "data.amount_vnd"),
    ("float components", variant(type="dossier.components_digitized", data={"components": 1.5}), "data.components"),
    ("unknown unit", variant(data={"unit_code": "P99"}), "data.unit_code"),
    ("unknown procedure", variant(data={"procedure_code": "X.000"}), "data.procedure_code"),
    ("record not object", ["not", "an", "event"], "(record)"),
    # Issue 10: times out of range, units outside their validity, hostile strings.
    ("year one", variant(occurred_at="0001-01-01T00:00:00+07:00"), "occurred_at"),
    ("before 2015", variant(occurred_at="1990-01-01T00:00:00+07:00"), "occurred_at"),
    ("due in 9999", variant(data={"due_at": "9999-12-31T23:59:59-07:00"}), "data.due_at"),
    ("due before receipt", variant(data={"due_at": f"{MONTH}-01T00:00:00+07:00"}), "data.due_at"),
    ("unit not yet valid", variant(occurred_at="2025-06-30T09:00:00+07:00"), "data.unit_code"),
    ("NUL in dossier id", variant(data={"dossier_id": "HS\u0000-1"}), "data.dossier_id"),
    ("NUL in officer id", variant(data={"officer_id": "O\u00001"}), "data.officer_id"),
    ("NUL in an extra field", variant(data={"note": "a\u0000b"}), "data"),
    ("space in dossier id", variant(data={"dossier_id": "HS 0001"}), "data.dossier_id"),
    ("non-ASCII dossier id", variant(data={"dossier_id": "HỒ-SƠ-1"}), "data.dossier_id"),
    ("deep data", variant(data={"note": orjson.loads("[" * 200 + "]" * 200)}), "data"),
]


@pytest.mark.parametrize(("name", "record", "field"), BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_each_bad_record_is_rejected_with_its_field_and_the_good_one_stored(
    gateway: httpx.Client,
    make_key,
    name: str,
    record: Any,
    field: str,  # type: ignore[no-untyped-def]
) -> None:
    key = make_key("tms-bad", ["P01"])
    good = variant(event_id=f"good-{uuid.uuid4().hex}", data={"dossier_id": f"OK-{uuid.uuid4().hex[:10]}"})
    response = gateway.post("/api/v1/events", json=[record, good], headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1
    [rejected] = body["rejected"]
    assert rejected["index"] == 0
    assert field in [e["field"] for e in rejected["errors"]], rejected
    assert all(e["reason"] for e in rejected["errors"])


def test_all_rejected_is_422_and_bad_json_is_400(gateway: httpx.Client, make_key) -> None:  # type: ignore[no-untyped-def]
    key = make_key("tms-bad", ["P01"])
    auth = {"Authorization": f"Bearer {key}"}
    all_bad = gateway.post("/api/v1/events", json=[variant(type="nope")], headers=auth)
    assert all_bad.status_code == 422
    assert all_bad.json()["rejected"][0]["errors"][0]["field"] == "type"
    bad_json = gateway.post(
        "/api/v1/events", content=b'{"event_id": ', headers={**auth, "content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["details"][0]["field"] == "body"
    bad_line = gateway.post(
        "/api/v1/events",
        content=b"{not json}\n" + orjson.dumps(variant(event_id=f"nd-{uuid.uuid4().hex}", data={"dossier_id": "ND-1"})),
        headers={**auth, **NDJSON},
    )
    assert bad_line.status_code == 200
    assert bad_line.json()["accepted"] == 1
    assert bad_line.json()["rejected"][0]["errors"][0]["field"] == "(record)"


def test_oversize_and_too_many_are_413(gateway: httpx.Client, make_key) -> None:  # type: ignore[no-untyped-def]
    key = make_key("tms-bad", ["P01"])
    auth = {"Authorization": f"Bearer {key}", **NDJSON}
    huge = b"x" * (10 * 1024 * 1024 + 1)
    response = gateway.post("/api/v1/events", content=huge, headers=auth)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    many = ndjson([variant(event_id=f"m{i}") for i in range(10_001)])
    assert gateway.post("/api/v1/events", content=many, headers=auth).status_code == 413


def test_credentials(gateway: httpx.Client, make_key) -> None:  # type: ignore[no-untyped-def]
    event = variant(event_id=f"cred-{uuid.uuid4().hex}")
    missing = gateway.post("/api/v1/events", json=event)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    wrong = gateway.post("/api/v1/events", json=event, headers={"Authorization": "Bearer sqi_nope_nope"})
    assert wrong.status_code == 401
    other_source = make_key("tms-other", ["P01"])
    forbidden = gateway.post("/api/v1/events", json=event, headers={"X-API-Key": other_source})
    assert forbidden.status_code == 403
    assert forbidden.json()["rejected"][0]["errors"][0]["field"] == "source"
    other_unit = make_key("tms-bad", ["P02"])
    outside = gateway.post("/api/v1/events", json=event, headers={"Authorization": f"Bearer {other_unit}"})
    assert outside.status_code == 403
    assert outside.json()["rejected"][0]["errors"][0]["field"] == "data.unit_code"
    assert "X-Request-ID" in outside.headers


def test_feeds_show_the_callers_own_source(gateway: httpx.Client, make_key) -> None:  # type: ignore[no-untyped-def]
    key = make_key("tms-feed", ["P01"])
    auth = {"Authorization": f"Bearer {key}"}
    ok = variant(event_id=f"f-{uuid.uuid4().hex}", source="tms-feed", data={"dossier_id": f"F-{uuid.uuid4().hex[:8]}"})
    gateway.post("/api/v1/events", json=[ok, variant(source="tms-feed", type="nope")], headers=auth)
    feeds = gateway.get("/api/v1/feeds", headers=auth)
    assert feeds.status_code == 200
    [feed] = feeds.json()
    assert feed["source"] == "tms-feed"
    assert feed["events_today"] >= 1 and feed["rejected_today"] >= 1
    # Reasons are counted by field and class (docs/integration.md), never by the values sent.
    assert feed["top_rejection_reasons"][0]["reason"] == "type:unknown"


def test_openapi_is_merged_and_docs_need_no_cdn(gateway: httpx.Client) -> None:
    document = gateway.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/events", "/api/v1/dossiers/{dossier_id}/rating-code", "/api/v1/keys", "/api/v1/units"):
        assert path in document["paths"], path
    docs = gateway.get("/docs").text
    assert "cdn" not in docs.lower() and "/docs/static/swagger-ui-bundle.js" in docs
    assert gateway.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_the_integration_guides_bash_examples_work(gateway: httpx.Client, make_key, platform: str) -> None:  # type: ignore[no-untyped-def]
    """docs/integration.md's curl examples, run as written against the platform."""
    from tests.integration.ingest.test_integration_doc import blocks

    key = make_key("tms-p27", ["P27"])
    examples = blocks("bash")
    assert len(examples) >= 3
    for _, script in examples:
        run = subprocess.run(
            ["bash", "-c", script],
            env={**os.environ, "SQI": platform, "KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        answer = orjson.loads(run.stdout)
        assert "error" not in answer, (script, answer)
        if "/api/v1/events" in script:
            assert answer["accepted"] == 1 and set(answer["rating_codes"]) == {"HCM-000900"}, answer
    # Its dossier is completed a minute after its receipt, so it is not carried, open, into every
    # later month of P27 (the simulated-month test compares P27 exactly, and skips the example's month).
    [received_at] = {at for _, script in examples for at in re.findall(r'"occurred_at": "([^"]+)"', script)}
    done = {
        "event_id": "hcm-000900:done",
        "type": "dossier.completed",
        "source": "tms-p27",
        "occurred_at": (datetime.fromisoformat(received_at) + timedelta(minutes=1)).isoformat(),
        "data": {"dossier_id": "HCM-000900", "outcome": "approved", "result_digitized": False},
    }
    answer = gateway.post("/api/v1/events", json=done, headers={"Authorization": f"Bearer {key}"}).json()
    assert answer["accepted"] + answer["duplicates"] == 1, answer  # a rerun on the same platform resends it
