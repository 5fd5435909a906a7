"""Imported ratings whose time is absurd, and resends that differ from the first send."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.feedback.bootstrap import Feedback
from services.feedback.settings import FeedbackSettings
from tests.integration.feedback.conftest import gateway_headers, integrator, outbox_bodies, sql, staff

pytestmark = pytest.mark.integration


def new_dossier() -> str:
    return f"HS-{uuid.uuid4().hex[:12].upper()}"


def record(dossier: str, level: str, rated_at: str, **extra: object) -> dict[str, object]:
    return {"dossier_id": dossier, "level": level, "rated_at": rated_at, "origin": "national_portal", **extra}


@pytest.mark.parametrize("rated_at", ["0001-01-01T00:00:00+07:00", "1970-01-01T00:00:00+07:00"])
async def test_a_rating_time_before_sqi_existed_is_rejected_not_stored(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings, rated_at: str
) -> None:
    dossier, good = new_dossier(), new_dossier()
    for d in (dossier, good):
        await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=d)
    headers = gateway_headers(settings, integrator("P01"))
    answer = await client.post(
        "/api/v1/ratings/import",
        json=[record(dossier, "satisfied", rated_at), record(good, "satisfied", "2026-10-05T09:00:00+07:00")],
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 1
    assert [(r["index"], [e["field"] for e in r["errors"]]) for r in body["rejected"]] == [(0, ["rated_at"])]
    assert await sql(feedback, "SELECT 1 FROM feedback.rating_history WHERE dossier_id = :d", d=dossier) == []
    # The unit's staff can still list its ratings (a year-0 time stored would fail every read).
    listed = await client.get(
        "/api/v1/ratings", params={"unit": "P01"}, headers=gateway_headers(settings, staff("P01"))
    )
    assert listed.status_code == 200, listed.text


async def test_a_resend_with_another_level_is_a_conflict_not_a_duplicate(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=dossier)
    headers = gateway_headers(settings, integrator("P01"))
    first = record(dossier, "dissatisfied", "2026-10-05T09:00:00+07:00", criteria={"online": 1})
    answer = await client.post("/api/v1/ratings/import", json=[first], headers=headers)
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    # The same record again (the same instant written in UTC) is a duplicate.
    same = {**first, "rated_at": "2026-10-05T02:00:00Z"}
    again = await client.post("/api/v1/ratings/import", json=[same], headers=headers)
    assert again.json() == {"accepted": 0, "duplicates": 1, "held": 0, "rejected": []}
    # Another level or other criteria under the same (origin, dossier, time): refused with a reason.
    changed = [{**first, "level": "very_satisfied"}, {**first, "criteria": {"online": 3}}]
    conflict = await client.post("/api/v1/ratings/import", json=changed, headers=headers)
    assert conflict.status_code == 422, conflict.text
    body = conflict.json()
    assert body["accepted"] == 0 and body["duplicates"] == 0
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert all(r["errors"][0]["field"] == "rated_at" for r in body["rejected"])
    assert all("conflict" in r["errors"][0]["reason"] for r in body["rejected"])
    # The first version stays.
    current = await sql(feedback, "SELECT level FROM feedback.rating WHERE dossier_id = :d", d=dossier)
    assert [r.level for r in current] == ["dissatisfied"]
    events = [e for e in await outbox_bodies(feedback, "feedback.rating-submitted.v1") if e["dossier_id"] == dossier]
    assert [e["level"] for e in events] == ["dissatisfied"]


async def test_a_changed_resend_of_a_held_rating_is_a_conflict(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()  # not known to feedback yet: the rating is held
    headers = gateway_headers(settings, integrator("P01"))
    first = record(dossier, "satisfied", "2026-10-05T09:00:00+07:00")
    answer = await client.post("/api/v1/ratings/import", json=[first], headers=headers)
    assert answer.json() == {"accepted": 0, "duplicates": 0, "held": 1, "rejected": []}, answer.text
    changed = {**first, "level": "dissatisfied"}
    again = await client.post("/api/v1/ratings/import", json=[first, changed, changed], headers=headers)
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["held"], body["duplicates"]) == (0, 1)
    assert [(r["index"], r["errors"][0]["field"]) for r in body["rejected"]] == [(1, "rated_at"), (2, "rated_at")]
    held = await sql(feedback, "SELECT level FROM feedback.held_rating WHERE dossier_id = :d", d=dossier)
    assert [r.level for r in held] == ["satisfied"]


async def test_an_import_cannot_speak_for_the_citizens_channel(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=dossier)
    answer = await client.post(
        "/api/v1/ratings/import",
        json=[record(dossier, "very_satisfied", "2026-10-05T09:00:00+07:00", origin="citizen")],
        headers=gateway_headers(settings, integrator("P01")),
    )
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["rejected"][0]["errors"]] == ["origin"]
    assert await sql(feedback, "SELECT 1 FROM feedback.rating_history WHERE dossier_id = :d", d=dossier) == []
