"""Issue 10 items 5 and 6 at feedback: the rating code binds the dossier's owner unit, and an
imported rating of an unknown dossier is held, then applied or dropped when the dossier arrives."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.feedback.bootstrap import Feedback
from services.feedback.handlers.messages import on_dossier_batches, on_dossier_events
from services.feedback.settings import FeedbackSettings
from shared.contracts import DossierEventsAccepted, RawEvent
from shared.messaging.topology import IncomingMessage
from tests.integration.feedback.conftest import gateway_headers, integrator, outbox_bodies, sql

pytestmark = pytest.mark.integration


def new_dossier() -> str:
    return f"HS-{uuid.uuid4().hex[:12].upper()}"


async def deliver(feedback: Feedback, *events: RawEvent) -> None:
    body = DossierEventsAccepted(events=list(events)).model_dump_json().encode()
    async with feedback.uow() as uow:
        await on_dossier_events(IncomingMessage(uuid.uuid4().hex, DossierEventsAccepted.routing_key, body), uow)


def receipt(dossier: str, unit: str, at: str = "2026-10-05T08:00:00+07:00") -> RawEvent:
    data = {"dossier_id": dossier, "unit_code": unit, "procedure_code": "T.DKT.01"}
    return RawEvent(source="s", event_id=f"{dossier}:rcv", type="dossier.received", occurred_at=at, data=data)


def transfer(dossier: str, unit: str) -> RawEvent:
    data = {"dossier_id": dossier, "to_unit_code": unit}
    at = "2026-10-06T08:00:00+07:00"
    return RawEvent(source="s", event_id=f"{dossier}:trf", type="dossier.transferred", occurred_at=at, data=data)


def imported(dossier: str, level: str = "dissatisfied") -> dict[str, str]:
    return {"dossier_id": dossier, "level": level, "rated_at": "2026-10-07T09:00:00+07:00", "origin": "national_portal"}


async def test_the_code_is_bound_to_the_unit_that_received_the_dossier(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()
    # The transfer arrives before the receipt: the owner is still the receiving unit.
    await deliver(feedback, transfer(dossier, "P28"))
    await deliver(feedback, receipt(dossier, "P29"))
    rows = await sql(
        feedback, "SELECT unit_code, owner_unit_code FROM feedback.dossier_unit WHERE dossier_id = :d", d=dossier
    )
    assert [(r.unit_code, r.owner_unit_code) for r in rows] == [("P28", "P29")]
    body = {"dossier_id": dossier, "level": "satisfied"}
    other_units = await client.post(
        "/api/v1/ratings",
        json={**body, "rating_code": feedback.rating_codes.issue(dossier, "P28")},
        headers=gateway_headers(settings),
    )
    assert other_units.status_code == 403
    owners = await client.post(
        "/api/v1/ratings",
        json={**body, "rating_code": feedback.rating_codes.issue(dossier, "P29")},
        headers=gateway_headers(settings),
    )
    assert owners.status_code == 201, owners.text
    # A citizen faster than the dossier's events: the code itself names the unit it was issued for.
    early = new_dossier()
    ahead = await client.post(
        "/api/v1/ratings",
        json={"dossier_id": early, "level": "satisfied", "rating_code": feedback.rating_codes.issue(early, "P01")},
        headers=gateway_headers(settings),
    )
    assert ahead.status_code == 201, ahead.text
    made_up = await client.post(
        "/api/v1/ratings",
        json={"dossier_id": new_dossier(), "level": "satisfied", "rating_code": "ZZZZZZZZ"},
        headers=gateway_headers(settings),
    )
    assert made_up.status_code == 403


async def test_a_held_rating_is_applied_when_its_dossier_arrives_at_a_unit_the_key_covers(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()
    headers = gateway_headers(settings, integrator("P01"))
    answer = await client.post("/api/v1/ratings/import", json=[imported(dossier)], headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 0, "duplicates": 0, "held": 1, "rejected": []}
    again = await client.post("/api/v1/ratings/import", json=[imported(dossier)], headers=headers)
    assert again.json()["duplicates"] == 1 and again.json()["held"] == 0
    assert await sql(feedback, "SELECT 1 FROM feedback.rating WHERE dossier_id = :d", d=dossier) == []
    await deliver(feedback, receipt(dossier, "P01"))
    current = await sql(feedback, "SELECT level, origin FROM feedback.rating WHERE dossier_id = :d", d=dossier)
    assert [(r.level, r.origin) for r in current] == [("dissatisfied", "national_portal")]
    events = [e for e in await outbox_bodies(feedback, "feedback.rating-submitted.v1") if e["dossier_id"] == dossier]
    assert [e["unit_code"] for e in events] == ["P01"]
    held = await sql(feedback, "SELECT status, resolution FROM feedback.held_rating WHERE dossier_id = :d", d=dossier)
    assert [r.status for r in held] == ["applied"]
    # Delivered again (a redelivery): nothing applied twice.
    await deliver(feedback, receipt(dossier, "P01"))
    assert len(await sql(feedback, "SELECT 1 FROM feedback.rating_history WHERE dossier_id = :d", d=dossier)) == 1


async def test_a_planted_rating_is_dropped_with_an_audit_trail(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()
    planted = await client.post(
        "/api/v1/ratings/import", json=[imported(dossier)], headers=gateway_headers(settings, integrator("P28"))
    )
    assert planted.json()["held"] == 1
    await deliver(feedback, receipt(dossier, "P29"))
    assert await sql(feedback, "SELECT 1 FROM feedback.rating_history WHERE dossier_id = :d", d=dossier) == []
    held = await sql(feedback, "SELECT status, resolution FROM feedback.held_rating WHERE dossier_id = :d", d=dossier)
    assert [r.status for r in held] == ["dropped"] and "P29" in held[0].resolution
    # Once the dossier is known, the same key is refused outright.
    late = await client.post(
        "/api/v1/ratings/import",
        json=[imported(dossier, "satisfied")],
        headers=gateway_headers(settings, integrator("P28")),
    )
    assert late.status_code == 422 and late.json()["rejected"][0]["errors"][0]["field"] == "dossier_id"


async def test_an_import_racing_the_dossiers_events_is_never_left_held(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    import asyncio

    dossier = new_dossier()
    body = DossierEventsAccepted(events=[receipt(dossier, "P01")]).model_dump_json().encode()
    async with feedback.uow() as uow:
        # The consumer has stored the dossier but not committed when the import arrives.
        await on_dossier_events(IncomingMessage(uuid.uuid4().hex, DossierEventsAccepted.routing_key, body), uow)
        pending = asyncio.create_task(
            client.post(
                "/api/v1/ratings/import", json=[imported(dossier)], headers=gateway_headers(settings, integrator("P01"))
            )
        )
        # Wait (with a deadline) until the import is parked behind the dossier's lock.
        deadline = asyncio.get_running_loop().time() + 30
        waiting = (
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 7310 AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        while (await sql(feedback, waiting))[0].n == 0:
            assert asyncio.get_running_loop().time() < deadline, "the import never waited for the dossier's lock"
            await asyncio.sleep(0.05)
        assert not pending.done()
    answer = await asyncio.wait_for(pending, timeout=30)
    assert answer.json()["accepted"] == 1 and answer.json()["held"] == 0, answer.text
    assert len(await sql(feedback, "SELECT 1 FROM feedback.rating WHERE dossier_id = :d", d=dossier)) == 1


async def test_a_batch_applies_held_ratings_with_the_owner_one_message_at_a_time_would(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    """A dossier with no receipt, transferred to P01 and then to P28 in two messages: one message at
    a time, the first stores it with P01 as its owner and P01's key's held rating is applied. The
    same two messages consumed as one batch must do the same (the batch's latest unit is P28)."""

    def moved(dossier: str, unit: str, at: str) -> RawEvent:
        data = {"dossier_id": dossier, "to_unit_code": unit}
        return RawEvent(source="s", event_id=f"{dossier}:{unit}", type="dossier.transferred", occurred_at=at, data=data)

    def message(*events: RawEvent) -> IncomingMessage:
        body = DossierEventsAccepted(events=list(events)).model_dump_json().encode()
        return IncomingMessage(uuid.uuid4().hex, DossierEventsAccepted.routing_key, body)

    one_by_one, batched = new_dossier(), new_dossier()
    for dossier in (one_by_one, batched):
        answer = await client.post(
            "/api/v1/ratings/import", json=[imported(dossier)], headers=gateway_headers(settings, integrator("P01"))
        )
        assert answer.json()["held"] == 1, answer.text

    def messages(dossier: str) -> list[IncomingMessage]:
        return [
            message(moved(dossier, "P01", "2026-10-06T08:00:00+07:00")),
            message(moved(dossier, "P28", "2026-10-08T08:00:00+07:00")),
        ]

    for m in messages(one_by_one):
        async with feedback.uow() as uow:
            await on_dossier_batches([m], uow)
    async with feedback.uow() as uow:
        await on_dossier_batches(messages(batched), uow)

    for dossier in (one_by_one, batched):
        held = await sql(feedback, "SELECT status FROM feedback.held_rating WHERE dossier_id = :d", d=dossier)
        assert [r.status for r in held] == ["applied"], dossier
        rows = await sql(
            feedback, "SELECT unit_code, owner_unit_code FROM feedback.dossier_unit WHERE dossier_id = :d", d=dossier
        )
        assert [(r.unit_code, r.owner_unit_code) for r in rows] == [("P28", None)]
