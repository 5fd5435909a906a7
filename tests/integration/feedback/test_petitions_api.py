"""Petitions through the API against real PostgreSQL: lifecycle, reactions, repeats, privacy."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import httpx
import pytest

from services.feedback.adapters.tables import inbox
from services.feedback.adapters.tables import unit as unit_table
from services.feedback.bootstrap import Feedback
from services.feedback.settings import FeedbackSettings
from services.feedback.subscriptions import SUBSCRIPTIONS
from shared.contracts import DossierEventsAccepted, RawEvent, UnitRecord, UnitsChanged
from shared.messaging.consumer import Consumer
from shared.messaging.topology import IncomingMessage
from shared.migrations import check
from tests.integration.feedback.conftest import MIGRATIONS, gateway_headers, outbox_bodies, sql, staff
from tests.integration.unit_copies import an_older_revision_never_wins

pytestmark = pytest.mark.integration

CONTACT = "nguyen.thi.b@example.vn 0912 345 678"
CONTENT = "Tôi nộp hồ sơ hoàn thuế từ tháng trước nhưng chưa được giải quyết, cán bộ không trả lời điện thoại."
TITLE = "Hồ sơ hoàn thuế chậm"


def petition(**over: object) -> dict[str, object]:
    return {
        "unit_code": "P01",
        "category": "progress",
        "title": f"{TITLE} {uuid.uuid4().hex[:6]}",
        "content": CONTENT,
        "contact": CONTACT,
        **over,
    }


async def file(client: httpx.AsyncClient, settings: FeedbackSettings, **over: object) -> dict[str, str]:
    r = await client.post("/api/v1/petitions", json=petition(**over), headers=gateway_headers(settings))
    assert r.status_code == 201, r.text
    return r.json()


async def test_full_lifecycle_with_reaction(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await file(client, settings)
    pid, code = created["petition_id"], created["access_code"]
    officer = gateway_headers(settings, staff("P01"))
    outsider = gateway_headers(settings, staff("P02"))

    seen = await client.get(f"/api/v1/petitions/{pid}", params={"access_code": code}, headers=gateway_headers(settings))
    assert seen.status_code == 200 and seen.json()["status"] == "received"
    assert "contact" not in seen.json() and "content" not in seen.json()
    wrong = await client.get(
        f"/api/v1/petitions/{pid}", params={"access_code": "AAAAAAAA"}, headers=gateway_headers(settings)
    )
    unknown = await client.get(
        "/api/v1/petitions/PANOTHING", params={"access_code": code}, headers=gateway_headers(settings)
    )
    assert wrong.status_code == unknown.status_code == 404 and wrong.json() == unknown.json()

    assert (await client.post(f"/api/v1/petitions/{pid}/publish", headers=officer)).status_code == 409
    assert (
        await client.post(f"/api/v1/petitions/{pid}/answer", json={"answer": "x"}, headers=outsider)
    ).status_code == 403

    asked = await client.post(
        f"/api/v1/petitions/{pid}/request-info", json={"question": "Số tờ khai?"}, headers=officer
    )
    assert asked.status_code == 200 and asked.json()["status"] == "more_info_requested"
    assert asked.json()["contact"] == CONTACT  # staff of the unit may contact the petitioner
    citizen = await client.get(
        f"/api/v1/petitions/{pid}", params={"access_code": code}, headers=gateway_headers(settings)
    )
    assert citizen.json()["question"] == "Số tờ khai?"
    more = await client.post(
        f"/api/v1/petitions/{pid}/information",
        json={"access_code": code, "information": "Tờ khai số 01/GTGT kỳ tháng 9/2026"},
        headers=gateway_headers(settings),
    )
    assert more.status_code == 200 and more.json()["status"] == "received"

    answered = await client.post(
        f"/api/v1/petitions/{pid}/answer", json={"answer": "Đã hoàn thuế ngày 20/10."}, headers=officer
    )
    assert answered.status_code == 200 and answered.json()["deadlines"]["publish_due_at"] is not None
    hidden = await client.get(
        f"/api/v1/petitions/{pid}", params={"access_code": code}, headers=gateway_headers(settings)
    )
    assert hidden.json()["answer"] is None  # not before it is published
    early = await client.post(
        f"/api/v1/petitions/{pid}/reaction",
        json={"access_code": code, "reaction": "like"},
        headers=gateway_headers(settings),
    )
    assert early.status_code == 409
    assert (await client.post(f"/api/v1/petitions/{pid}/publish", headers=officer)).status_code == 200
    shown = await client.get(
        f"/api/v1/petitions/{pid}", params={"access_code": code}, headers=gateway_headers(settings)
    )
    assert shown.json()["answer"] == "Đã hoàn thuế ngày 20/10." and shown.json()["status"] == "published"

    for reaction in ("like", "dislike"):
        r = await client.post(
            f"/api/v1/petitions/{pid}/reaction",
            json={"access_code": code, "reaction": reaction},
            headers=gateway_headers(settings),
        )
        assert r.status_code == 200 and r.json()["reaction"] == reaction
    refuse_now = await client.post(f"/api/v1/petitions/{pid}/refuse", json={"reason": "x"}, headers=officer)
    assert refuse_now.status_code == 409 and "cannot refuse" in refuse_now.json()["error"]["message"]

    events = [e for e in await outbox_bodies(feedback, "feedback.petition-changed.v1") if e["petition_id"] == pid]
    assert [e["change"] for e in events] == [
        "receive",
        "request_info",
        "supplement",
        "answer",
        "publish",
        "react",
        "react",
    ]
    assert [e["version"] for e in events] == list(range(1, 8))
    last = events[-1]
    assert (last["likes"], last["dislikes"], last["status"]) == (0, 1, "published")
    assert last["handled_on_time"] is True and last["classification"] == "tthc"
    assert last["answer_due_at"] and last["publish_due_at"] and last["petitioned_again"] is False

    listed = await client.get("/api/v1/petitions", params={"unit": "P01", "status": "published"}, headers=officer)
    assert listed.status_code == 200 and pid in {p["petition_id"] for p in listed.json()["items"]}

    # Privacy: nothing personal in any message or log line; the contact is encrypted at rest.
    everything = str(await outbox_bodies(feedback))
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (CONTACT, CONTENT, "Tờ khai số 01/GTGT", "Số tờ khai?", "Đã hoàn thuế", TITLE):
        assert secret not in everything
        assert secret not in logs
    stored = await sql(feedback, "SELECT contact_encrypted FROM feedback.petition WHERE petition_id = :p", p=pid)
    assert CONTACT.encode() not in stored[0].contact_encrypted


async def test_transfer_moves_responsibility(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    pid = (await file(client, settings))["petition_id"]
    p01, p02 = gateway_headers(settings, staff("P01")), gateway_headers(settings, staff("P02"))
    bad = await client.post(f"/api/v1/petitions/{pid}/transfer", json={"to_unit_code": "NOPE"}, headers=p01)
    assert bad.status_code == 422
    moved = await client.post(f"/api/v1/petitions/{pid}/transfer", json={"to_unit_code": "P02"}, headers=p01)
    assert moved.status_code == 200 and moved.json()["transfers"] == 1 and moved.json()["unit_code"] == "P02"
    assert (await client.post(f"/api/v1/petitions/{pid}/refuse", json={"reason": "r"}, headers=p01)).status_code == 403
    refused = await client.post(
        f"/api/v1/petitions/{pid}/refuse", json={"reason": "Không thuộc thẩm quyền"}, headers=p02
    )
    assert refused.status_code == 200 and refused.json()["handled_on_time"] is True
    central = gateway_headers(settings, staff("CT"))
    assert (await client.get(f"/api/v1/petitions/{pid}", headers=central)).json()["status"] == "refused"


async def test_petitioned_again_and_duplicates(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = f"HS-{uuid.uuid4().hex[:10]}"
    first = await file(client, settings, dossier_id=dossier)
    again = await file(client, settings, dossier_id=dossier, category="staff_conduct")
    events = {e["petition_id"]: e for e in await outbox_bodies(feedback, "feedback.petition-changed.v1")}
    assert events[first["petition_id"]]["petitioned_again"] is False
    assert events[again["petition_id"]]["petitioned_again"] is True
    assert events[again["petition_id"]]["classification"] == "staff"

    same = petition(title="Trùng lặp")
    assert (await client.post("/api/v1/petitions", json=same, headers=gateway_headers(settings))).status_code == 201
    dup = await client.post("/api/v1/petitions", json=same, headers=gateway_headers(settings))
    assert dup.status_code == 409
    other_address = await client.post(
        "/api/v1/petitions", json=same, headers=gateway_headers(settings, address="198.51.100.9")
    )
    assert other_address.status_code == 201
    unknown_unit = await client.post(
        "/api/v1/petitions", json=petition(unit_code="ZZ"), headers=gateway_headers(settings)
    )
    assert unknown_unit.status_code == 422
    bad_category = await client.post(
        "/api/v1/petitions", json=petition(category="x"), headers=gateway_headers(settings)
    )
    assert bad_category.status_code == 422


async def test_html_honeypot_stores_nothing(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    before = await sql(feedback, "SELECT count(*) AS n FROM feedback.petition")
    form = {**{k: str(v) for k, v in petition().items()}, "website": "http://spam.example"}
    r = await client.post("/petition", data=form, headers=gateway_headers(settings))
    assert r.status_code == 303
    after = await sql(feedback, "SELECT count(*) AS n FROM feedback.petition")
    assert after[0].n == before[0].n


async def test_consumes_units_and_dossiers_once(feedback: Feedback) -> None:
    consumer = Consumer(uow_factory=feedback.uow, inbox=inbox)
    units_sub, dossiers_sub = SUBSCRIPTIONS
    units_msg = IncomingMessage(
        "m-units-1",
        UnitsChanged.routing_key,
        UnitsChanged(units=[UnitRecord(code="P01.NEW", name="Thuế cơ sở mới", level="local", parent_code="P01")])
        .model_dump_json()
        .encode(),
    )
    assert await consumer.apply(units_sub, units_msg) is True
    assert await consumer.apply(units_sub, units_msg) is False  # redelivery: deduped by the inbox
    assert await sql(feedback, "SELECT parent_code FROM feedback.unit WHERE code = 'P01.NEW'") == [("P01",)]
    events = [
        RawEvent(
            source="s",
            event_id="1",
            type="dossier.received",
            occurred_at="2026-10-05T08:00:00+07:00",
            data={"dossier_id": "HS-CONSUMED", "unit_code": "P01"},
        ),
        RawEvent(
            source="s",
            event_id="2",
            type="dossier.transferred",
            occurred_at="2026-10-06T08:00:00+07:00",
            data={"dossier_id": "HS-CONSUMED", "to_unit_code": "P02"},
        ),
    ]
    batch = IncomingMessage(
        "m-d-1", DossierEventsAccepted.routing_key, DossierEventsAccepted(events=events).model_dump_json().encode()
    )
    assert await consumer.apply(dossiers_sub, batch) is True
    older = IncomingMessage(
        "m-d-2", DossierEventsAccepted.routing_key, DossierEventsAccepted(events=events[:1]).model_dump_json().encode()
    )
    await consumer.apply(dossiers_sub, older)  # late, older event: must not win
    assert await sql(feedback, "SELECT unit_code FROM feedback.dossier_unit WHERE dossier_id = 'HS-CONSUMED'") == [
        ("P02",)
    ]


def test_alembic_check_is_clean(database_url: str) -> None:
    check(Path(MIGRATIONS), database_url)


async def test_an_older_unit_record_never_overwrites_a_newer_one(feedback: Feedback) -> None:
    await an_older_revision_never_wins(feedback.uow, inbox, SUBSCRIPTIONS, unit_table)
