"""Items 2, 3, 5, 7, 8, 9 of issue 10 at the ingest API: sane times, units valid on the day,
no takeover, no 500 for hostile input, resends answer their code, metrics and accepted_at."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest

from services.ingest.bootstrap import Ingest
from services.ingest.settings import IngestSettings
from shared.identity import Principal
from tests.integration.ingest.conftest import admin, headers, integrator, lifecycle, new_id, received, sql
from tests.metric_samples import sample

pytestmark = pytest.mark.integration


async def post(client: httpx.AsyncClient, settings: IngestSettings, principal: Principal, body: Any) -> httpx.Response:
    return await client.post("/api/v1/events", json=body, headers=headers(settings, principal))


def errors_of(answer: httpx.Response, index: int = 0) -> list[dict[str, str]]:
    by_index = {r["index"]: r["errors"] for r in answer.json()["rejected"]}
    return by_index.get(index, [])


async def test_times_outside_the_documented_range_are_refused_per_record(
    client: httpx.AsyncClient, settings: IngestSettings
) -> None:
    source, key = "tms-times", integrator("tms-times", "P01")
    good = received(source, new_id())
    year_one = received(source, new_id(), due_at="0001-01-01T00:00:00+07:00")
    due_far = received(source, new_id(), due_at="9999-12-31T23:59:59-07:00")
    due_before = received(source, new_id(), due_at="2026-10-04T08:00:00+07:00")
    old = received(source, new_id(), at="1990-01-01T08:00:00+07:00")
    first_year = received(source, new_id(), at="0001-01-01T00:00:00+07:00")
    answer = await post(client, settings, key, [good, year_one, due_far, due_before, old, first_year])
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    assert [e["field"] for e in errors_of(answer, 1)] == ["data.due_at"]
    assert "before the dossier's receipt" in errors_of(answer, 1)[0]["reason"]
    assert "more than 5 years after occurred_at" in errors_of(answer, 2)[0]["reason"]
    assert [e["field"] for e in errors_of(answer, 3)] == ["data.due_at"]
    assert errors_of(answer, 4) == [
        {"field": "occurred_at", "reason": "is before 2015-01-01: SQI keeps no events that old"}
    ]
    assert [e["field"] for e in errors_of(answer, 5)] == ["occurred_at"]


async def test_procedure_dates_are_bounded(client: httpx.AsyncClient, settings: IngestSettings) -> None:
    from services.ingest.seed import procedure_events

    event = procedure_events(
        [
            {
                "procedure_code": "T.TEST.DATES",
                "name": "Thủ tục thử",
                "field": "Thử",
                "levels": "local",
                "time_limit_wd": "3",
                "online_level_offered": "full",
                "has_fee": "false",
                "returns_document": "true",
                "target": "both",
            }
        ]
    )[0]
    event["data"].update(legal_effective_date="9999-01-01", publicized_at="0001-01-01T00:00:00+07:00")
    answer = await post(client, settings, integrator("sqi-reference", "CT"), [{**event, "source": "sqi-reference"}])
    assert answer.status_code == 422, answer.text
    assert sorted(e["field"] for e in errors_of(answer)) == ["data.legal_effective_date", "data.publicized_at"]


async def test_a_unit_is_refused_outside_its_validity_naming_the_right_units(
    client: httpx.AsyncClient, settings: IngestSettings
) -> None:
    source = "tms-p28-validity"
    key = integrator(source, "CT")
    before = received(source, new_id(), unit="P28", at="2025-06-30T09:00:00+07:00")
    after = received(source, new_id(), unit="P28", at="2025-07-01T09:00:00+07:00")
    closed = received(source, new_id(), unit="P28.T63.1", at="2025-07-02T09:00:00+07:00")
    in_time = received(source, new_id(), unit="P28.T63.1", at="2025-06-30T09:00:00+07:00")
    answer = await post(client, settings, key, [before, after, closed, in_time])
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
    assert errors_of(answer, 0) == [
        {"field": "data.unit_code", "reason": "unit P28 exists from 2025-07-01; before that use P28.T63.1, P28.T63.2"}
    ]
    assert errors_of(answer, 2) == [
        {"field": "data.unit_code", "reason": "unit P28.T63.1 exists until 2025-06-30; after that use P28"}
    ]
    transfer = lifecycle(source, after["data"]["dossier_id"], "transferred", to_unit_code="P29.T63.1")
    answer = await post(client, settings, key, [transfer])
    assert answer.status_code == 422 and errors_of(answer)[0]["field"] == "data.to_unit_code"


async def test_no_takeover_of_another_units_dossier(
    client: httpx.AsyncClient, settings: IngestSettings, ingest: Ingest
) -> None:
    dossier = new_id()
    p29, p28 = integrator("tms-p29", "P29"), integrator("tms-p28", "P28")
    first = await post(client, settings, p29, [received("tms-p29", dossier, unit="P29")])
    assert first.status_code == 200 and first.json()["accepted"] == 1
    code = first.json()["rating_codes"][dossier]
    taken = await post(client, settings, p28, [received("tms-p28", dossier, unit="P28", event_id="other:rcv")])
    assert taken.status_code == 422, taken.text
    assert errors_of(taken)[0]["field"] == "data.dossier_id" and "conflict" in errors_of(taken)[0]["reason"]
    assert taken.json()["rating_codes"] == {}
    # P28 may not complete it either; P29 still can; the owner did not move.
    done = lifecycle("tms-p28", dossier, "completed", outcome="approved", result_digitized=True)
    refused = await post(client, settings, p28, [done])
    assert refused.status_code == 403, refused.text
    ok = await post(client, settings, p29, [{**done, "source": "tms-p29"}])
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    owner = await sql(ingest, "SELECT unit_code, source FROM ingest.dossier WHERE dossier_id = :d", d=dossier)
    assert [(r.unit_code, r.source) for r in owner] == [("P29", "tms-p29")]
    # Same request, two units: the first receipt wins, the second is a conflict.
    twin = new_id()
    both = integrator("tms-both", "CT")
    answer = await post(
        client,
        settings,
        both,
        [received("tms-both", twin, unit="P01"), received("tms-both", twin, unit="P02", event_id="twin:2")],
    )
    assert answer.json()["accepted"] == 1 and "conflict" in errors_of(answer, 1)[0]["reason"]
    assert code == ingest.rating_codes.issue(dossier, "P29")


async def test_a_resent_receipt_answers_its_code_again(client: httpx.AsyncClient, settings: IngestSettings) -> None:
    dossier = new_id()
    key = integrator("tms-resend", "P01")
    event = received("tms-resend", dossier)
    first = await post(client, settings, key, [event])
    again = await post(client, settings, key, [event])
    assert again.status_code == 200 and again.json()["duplicates"] == 1 and again.json()["accepted"] == 0
    assert again.json()["rating_codes"] == first.json()["rating_codes"] != {}
    reprint = await client.get(f"/api/v1/dossiers/{dossier}/rating-code", headers=headers(settings, key))
    assert reprint.json()["rating_code"] == first.json()["rating_codes"][dossier]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_hostile_input_gets_a_4xx_with_the_field(client: httpx.AsyncClient, settings: IngestSettings) -> None:
    source, key = "tms-hostile", integrator("tms-hostile", "P01")
    cases = {
        "data.dossier_id": received(source, "HS-\u0000-1"),
        "data.officer_id": received(source, new_id(), officer_id="O\u00001"),
        "data": received(source, new_id(), extra={"note": "a\u0000b"}),
        "data.procedure_code": received(source, new_id(), procedure_code="T.DKT\u001f.01"),
        "occurred_at": received(source, new_id(), at="0001-01-01T00:00:00+00:00"),
    }
    spaced = received(source, "HS 0001")
    vietnamese = received(source, "HỒ-SƠ-1", event_id=new_id())
    deep = received(source, new_id())
    deep["data"]["extra"] = nested(300)
    for field_name, event in cases.items():
        answer = await post(client, settings, key, [event])
        assert answer.status_code == 422, (field_name, answer.text)
        assert field_name in [e["field"] for e in errors_of(answer)], answer.text
    for event in (spaced, vietnamese):
        answer = await post(client, settings, key, [event])
        assert answer.status_code == 422 and errors_of(answer)[0]["field"] == "data.dossier_id", answer.text
    answer = await client.post(
        "/api/v1/events",
        content=json.dumps([deep]),
        headers={**headers(settings, key), "content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert errors_of(answer) == [{"field": "data", "reason": "is nested more than 16 levels deep"}]
    for path in ("/api/v1/dossiers/HS%00X/rating-code", "/api/v1/dossiers/HS%1FX/rating-code"):
        reply = await client.get(path, headers=headers(settings, key))
        assert reply.status_code == 422, reply.text
    units = await client.get("/api/v1/units")
    assert units.status_code == 200
    bad_unit = await client.put(
        "/api/v1/units/X%00Y",
        json={"name": "A\u0000", "level": "local", "parent_code": "P01"},
        headers=headers(settings, admin()),
    )
    assert 400 <= bad_unit.status_code < 500, bad_unit.text
    replay = await client.get("/api/v1/replays/R%00X", headers=headers(settings, admin()))
    assert 400 <= replay.status_code < 500, replay.text
    for body in (
        {"name": "Thuế\u0000", "level": "local", "parent_code": "P01"},
        {"name": "Thuế cơ sở", "level": "local", "parent_code": "P01", "valid_from": "0001-01-01"},
    ):
        unit = await client.put("/api/v1/units/P01.TEST", json=body, headers=headers(settings, admin()))
        assert unit.status_code == 422, unit.text
    year_one = await client.post(
        "/api/v1/replays",
        json={"consumer": "scoring", "occurred_from": "0001-01-01T00:00:00+07:00"},
        headers=headers(settings, admin()),
    )
    assert year_one.status_code == 422, year_one.text
    feeds = await client.get("/api/v1/feeds", headers=headers(settings, key))
    assert feeds.status_code == 200


async def test_direction_controls_are_refused_in_unit_names_and_codes_and_events(
    client: httpx.AsyncClient, settings: IngestSettings
) -> None:
    # A right-to-left override (U+202E) or an isolate (U+2066–2069) turns the printed text after
    # it around: refused where it enters, with the field, as the other control characters are.
    office = {"name": "Thuế cơ sở 9 Hà Nội", "level": "local", "parent_code": "P01"}
    for field_name, body in (
        ("name", {**office, "name": "Thuế cơ sở \u202e9 Hà Nội"}),
        ("parent_code", {**office, "parent_code": "P01\u2067"}),
        ("successor_code", {**office, "successor_code": "\u2066P01.L01"}),
    ):
        unit = await client.put("/api/v1/units/P01.RTL", json=body, headers=headers(settings, admin()))
        assert unit.status_code == 422, unit.text
        [detail] = unit.json()["error"]["details"]
        assert detail["field"] == field_name and "U+202E" in detail["reason"], detail
    in_path = await client.put("/api/v1/units/P01.%E2%80%AERTL", json=office, headers=headers(settings, admin()))
    assert in_path.status_code == 422, in_path.text
    assert [d["field"] for d in in_path.json()["error"]["details"]] == ["code"]
    source, key = "tms-rtl", integrator("tms-rtl", "P01")
    event = received(source, new_id(), officer_id="can-bo-\u202ean")
    answer = await post(client, settings, key, [event])
    assert answer.status_code == 422, answer.text
    [error] = errors_of(answer)
    assert error["field"] == "data.officer_id" and "U+202E" in error["reason"], error


async def test_metrics_count_outcomes_and_reason_classes(
    client: httpx.AsyncClient, settings: IngestSettings, ingest: Ingest
) -> None:
    source, key = "tms-metrics", integrator("tms-metrics", "P01")
    before = {o: sample("sqi_events_total", source=source, outcome=o) for o in ("accepted", "duplicate", "rejected")}
    range_before = sample("sqi_events_rejected_total", source=source, reason="data.due_at:range")
    good = received(source, new_id())
    bad = received(source, new_id(), due_at="9999-01-01T00:00:00+07:00")
    await post(client, settings, key, [good, good, bad])
    assert sample("sqi_events_total", source=source, outcome="accepted") == before["accepted"] + 1
    assert sample("sqi_events_total", source=source, outcome="duplicate") == before["duplicate"] + 1
    assert sample("sqi_events_total", source=source, outcome="rejected") == before["rejected"] + 1
    assert sample("sqi_events_rejected_total", source=source, reason="data.due_at:range") == range_before + 1
    rows = await sql(
        ingest,
        "SELECT body FROM ingest.outbox WHERE routing_key = 'ingest.dossier-events.v1' "
        "AND convert_from(body, 'UTF8') LIKE :p",
        p=f"%{good['data']['dossier_id']}%",
    )
    assert len(rows) == 1 and orjson.loads(rows[0].body)["accepted_at"] is not None
    feed = await client.get("/api/v1/feeds", headers=headers(settings, key))
    reasons = feed.json()[0]["top_rejection_reasons"]
    assert reasons == [{"reason": "data.due_at:range", "count": 1}]
