"""Ratings through the API against real PostgreSQL: codes, replacement, lockout, imports."""

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


async def test_valid_rating_then_replacement_keeps_history(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=dossier)
    code = feedback.rating_codes.issue(dossier, "P01")
    body = {
        "dossier_id": dossier,
        "rating_code": code.lower(),  # codes are case-insensitive on paper
        "level": "dissatisfied",
        "criteria": {"conduct": 1, "total_time": 2},
        "comment": "Cán bộ Nguyễn Văn A hẹn lại ba lần",
    }
    first = await client.post("/api/v1/ratings", json=body, headers=gateway_headers(settings))
    assert first.status_code == 201, first.text
    assert first.json()["replaced"] is False and first.json()["level"] == "dissatisfied"
    second = await client.post(
        "/api/v1/ratings", json={**body, "level": "satisfied", "comment": None}, headers=gateway_headers(settings)
    )
    assert second.status_code == 201 and second.json()["replaced"] is True
    history = await sql(feedback, "SELECT level FROM feedback.rating_history WHERE dossier_id = :d", d=dossier)
    current = await sql(feedback, "SELECT level, replacements FROM feedback.rating WHERE dossier_id = :d", d=dossier)
    assert sorted(r.level for r in history) == ["dissatisfied", "satisfied"]
    assert [(r.level, r.replacements) for r in current] == [("satisfied", 1)]
    events = [e for e in await outbox_bodies(feedback, "feedback.rating-submitted.v1") if e["dossier_id"] == dossier]
    assert [e["level"] for e in events] == ["dissatisfied", "satisfied"]
    assert events[0]["unit_code"] == "P01" and events[0]["criteria"] == {"conduct": 1, "total_time": 2}
    assert events[1]["replaced"] is True and events[1]["previous_level"] == "dissatisfied"
    assert events[1]["origin"] == "citizen"
    # Staff of the unit read the comment; staff of another unit do not see the rating.
    mine = await client.get("/api/v1/ratings", params={"unit": "P01"}, headers=gateway_headers(settings, staff("P01")))
    assert mine.status_code == 200
    assert any(r["dossier_id"] == dossier for r in mine.json())
    other = await client.get("/api/v1/ratings", params={"unit": "P01"}, headers=gateway_headers(settings, staff("P02")))
    assert other.status_code == 403
    anonymous = await client.get("/api/v1/ratings", params={"unit": "P01"}, headers=gateway_headers(settings))
    assert anonymous.status_code == 401


async def test_wrong_code_answers_like_an_unknown_dossier(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    real = new_dossier()
    wrong_code = await client.post(
        "/api/v1/ratings",
        json={"dossier_id": real, "rating_code": "22222222", "level": "satisfied"},
        headers=gateway_headers(settings),
    )
    unknown = await client.post(
        "/api/v1/ratings",
        json={"dossier_id": "NO-SUCH-DOSSIER", "rating_code": "22222222", "level": "satisfied"},
        headers=gateway_headers(settings),
    )
    assert wrong_code.status_code == unknown.status_code == 403
    assert wrong_code.json() == unknown.json()


async def test_lockout_after_five_wrong_codes(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=dossier)
    good = {
        "dossier_id": dossier,
        "rating_code": feedback.rating_codes.issue(dossier, "P01"),
        "level": "very_satisfied",
    }
    for _ in range(5):
        r = await client.post(
            "/api/v1/ratings", json={**good, "rating_code": "ZZZZZZZZ"}, headers=gateway_headers(settings)
        )
        assert r.status_code == 403
    locked = await client.post("/api/v1/ratings", json=good, headers=gateway_headers(settings))
    assert locked.status_code == 423 and locked.json()["error"]["code"] == "locked"
    # A made-up id locks the same way: the lock tells nothing about existence.
    for _ in range(5):
        await client.post(
            "/api/v1/ratings",
            json={"dossier_id": "MADE-UP-1", "rating_code": "ZZZZZZZZ", "level": "satisfied"},
            headers=gateway_headers(settings),
        )
    made_up = await client.post(
        "/api/v1/ratings",
        json={"dossier_id": "MADE-UP-1", "rating_code": "ZZZZZZZZ", "level": "satisfied"},
        headers=gateway_headers(settings),
    )
    assert made_up.status_code == 423 and made_up.json() == locked.json()
    # An hour later the right code works again.
    await sql(
        feedback,
        "UPDATE feedback.code_lock SET locked_until = now() - interval '1 second' WHERE dossier_id = :d",
        d=dossier,
    )
    assert (await client.post("/api/v1/ratings", json=good, headers=gateway_headers(settings))).status_code == 201


async def test_field_limits(client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings) -> None:
    dossier = new_dossier()
    base = {"dossier_id": dossier, "rating_code": feedback.rating_codes.issue(dossier, "P01"), "level": "satisfied"}
    too_long = await client.post(
        "/api/v1/ratings", json={**base, "comment": "x" * 2001}, headers=gateway_headers(settings)
    )
    assert too_long.status_code == 422
    bad_criterion = await client.post(
        "/api/v1/ratings", json={**base, "criteria": {"nonsense": 2}}, headers=gateway_headers(settings)
    )
    assert bad_criterion.status_code == 422
    assert bad_criterion.json()["error"]["details"] == [{"field": "criteria.nonsense", "reason": "unknown criterion"}]
    bad_level = await client.post("/api/v1/ratings", json={**base, "level": "meh"}, headers=gateway_headers(settings))
    assert bad_level.status_code == 422
    huge = await client.post(
        "/api/v1/ratings",
        content=b'{"dossier_id": "' + b"A" * 17_000 + b'"}',
        headers={**gateway_headers(settings), "content-type": "application/json"},
    )
    assert huge.status_code == 413


async def test_import_counts_with_origin_and_per_record_errors(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    mine, foreign, unknown = new_dossier(), new_dossier(), new_dossier()
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=mine)
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P02', now())", d=foreign)
    records = [
        {
            "dossier_id": mine,
            "level": "dissatisfied",
            "criteria": {"online": 1},
            "rated_at": "2026-10-05T09:00:00+07:00",
            "origin": "national_portal",
        },
        {
            "dossier_id": foreign,
            "level": "satisfied",
            "rated_at": "2026-10-05T09:00:00+07:00",
            "origin": "national_portal",
        },
        {"dossier_id": unknown, "level": "bad", "rated_at": "2026-10-05T09:00:00", "origin": "national_portal"},
        {
            "dossier_id": unknown,
            "level": "satisfied",
            "rated_at": "2026-10-05T10:00:00+07:00",
            "origin": "national_portal",
        },
    ]
    headers = gateway_headers(settings, integrator("P01"))
    answer = await client.post("/api/v1/ratings/import", json=records, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # The unknown dossier's rating is held until its events arrive (test_held_ratings.py).
    assert body["accepted"] == 1 and body["held"] == 1 and body["duplicates"] == 0
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert {e["field"] for e in body["rejected"][1]["errors"]} == {"level", "rated_at"}
    again = await client.post("/api/v1/ratings/import", json=records[:1], headers=headers)
    assert again.json() == {"accepted": 0, "duplicates": 1, "held": 0, "rejected": []}
    events = {e["dossier_id"]: e for e in await outbox_bodies(feedback, "feedback.rating-submitted.v1")}
    assert events[mine]["origin"] == "national_portal" and events[mine]["level"] == "dissatisfied"
    assert unknown not in events
    # Nobody but an integrator imports.
    assert (
        await client.post("/api/v1/ratings/import", json=records, headers=gateway_headers(settings))
    ).status_code == 401
    all_bad = await client.post("/api/v1/ratings/import", json=records[2:3], headers=headers)
    assert all_bad.status_code == 422


async def test_an_imported_older_rating_is_history_only_yet_announced(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    dossier = new_dossier()
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=dossier)
    headers = gateway_headers(settings, integrator("P01"))

    def record(level: str, rated_at: str) -> dict[str, object]:
        return {"dossier_id": dossier, "level": level, "rated_at": rated_at, "origin": "national_portal"}

    for level, rated_at in (("satisfied", "2026-03-15T09:00:00+07:00"), ("dissatisfied", "2026-02-20T09:00:00+07:00")):
        answer = await client.post("/api/v1/ratings/import", json=[record(level, rated_at)], headers=headers)
        assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    history = await sql(feedback, "SELECT level FROM feedback.rating_history WHERE dossier_id = :d", d=dossier)
    current = await sql(feedback, "SELECT level, replacements FROM feedback.rating WHERE dossier_id = :d", d=dossier)
    assert sorted(r.level for r in history) == ["dissatisfied", "satisfied"]
    assert [(r.level, r.replacements) for r in current] == [("satisfied", 0)]
    # Both are announced (scoring counts each for the periods judged after it was given); the
    # older one says it did not become current and replaced nothing.
    events = [e for e in await outbox_bodies(feedback, "feedback.rating-submitted.v1") if e["dossier_id"] == dossier]
    assert [(e["level"], e["current"], e["replaced"], e["previous_level"]) for e in events] == [
        ("satisfied", True, False, None),
        ("dissatisfied", False, False, None),
    ]
    assert events[1]["rated_at"].startswith("2026-02-20") and events[1]["unit_code"] == "P01"
    assert len({e["rating_id"] for e in events}) == 2
    assert all("comment" not in e for e in events)
