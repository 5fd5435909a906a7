"""Petition access codes resist guessing; bad input gets a 4xx, never a 500 (issue 10)."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from services.feedback.bootstrap import Feedback
from services.feedback.settings import FeedbackSettings
from shared.identity import CLIENT_ADDRESS_HEADER
from tests.integration.feedback.conftest import gateway_headers, sql, staff
from tests.integration.feedback.test_petitions_api import file, petition

pytestmark = pytest.mark.integration


def address() -> str:
    """A fresh client address per test: the per-address counts do not leak between tests."""
    return f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def follow(client: httpx.AsyncClient, settings: FeedbackSettings, pid: str, code: str, at: str) -> httpx.Response:
    return await client.get(
        f"/api/v1/petitions/{pid}", params={"access_code": code}, headers=gateway_headers(settings, address=at)
    )


async def test_access_codes_are_stored_as_a_keyed_hash(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings
) -> None:
    created = await file(client, settings)
    [row] = await sql(
        feedback, "SELECT access_code_hash FROM feedback.petition WHERE petition_id = :p", p=created["petition_id"]
    )
    assert bytes(row.access_code_hash) != hashlib.sha256(created["access_code"].encode()).digest()
    assert feedback.sealer.access_code_matches(created["petition_id"], created["access_code"], row.access_code_hash)
    assert not feedback.sealer.access_code_matches("PAOTHER", created["access_code"], row.access_code_hash)


async def test_legacy_unkeyed_hashes_still_verify(feedback: Feedback) -> None:
    legacy = hashlib.sha256(b"ABCDEFGH").digest()
    assert feedback.sealer.access_code_matches("PA1", " abcdefgh ", legacy)


async def test_wrong_codes_lock_the_petition_even_for_the_right_code(
    client: httpx.AsyncClient, settings: FeedbackSettings
) -> None:
    created = await file(client, settings)
    pid, code = created["petition_id"], created["access_code"]
    # Five wrong codes, each from another address: the petition's own count locks it.
    for _ in range(5):
        assert (await follow(client, settings, pid, "WRONGWRG", address())).status_code == 404
    locked = await follow(client, settings, pid, code, address())
    assert locked.status_code == 423
    assert locked.json()["error"]["code"] == "locked"
    # Another petition is not affected.
    other = await file(client, settings)
    assert (await follow(client, settings, other["petition_id"], other["access_code"], address())).status_code == 200


async def test_one_address_cannot_try_codes_across_many_petitions(
    client: httpx.AsyncClient, settings: FeedbackSettings
) -> None:
    guesser = address()
    mine = await file(client, settings)
    for n in range(20):
        response = await follow(client, settings, f"PAGUESS{n:03d}", "AAAAAAAA", guesser)
        assert response.status_code == 404
    # The address is locked now: even its own petition with the right code waits.
    assert (await follow(client, settings, mine["petition_id"], mine["access_code"], guesser)).status_code == 423
    assert (await follow(client, settings, mine["petition_id"], mine["access_code"], address())).status_code == 200
    reacting = await client.post(
        f"/api/v1/petitions/{mine['petition_id']}/reaction",
        json={"access_code": mine["access_code"], "reaction": "like"},
        headers=gateway_headers(settings, address=guesser),
    )
    assert reacting.status_code == 423


async def test_the_client_address_header_counts_only_with_the_internal_token(
    client: httpx.AsyncClient, settings: FeedbackSettings
) -> None:
    # Without the gateway's token a caller cannot pick the address its attempts count against.
    body = petition()
    forged = {CLIENT_ADDRESS_HEADER: "192.0.2.1"}
    first = await client.post("/api/v1/petitions", json=body, headers=forged)
    assert first.status_code == 201
    second = await client.post("/api/v1/petitions", json=body, headers={CLIENT_ADDRESS_HEADER: "192.0.2.2"})
    # Same peer (the test client), same petition: the duplicate check sees one address.
    assert second.status_code == 409


NUL = "\u0000"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"content": f"Nội dung phản ánh có ký tự {NUL} rỗng"}, "content"),
        ({"title": f"Tiêu đề {NUL}"}, "title"),
        ({"contact": f"a{NUL}b"}, "contact"),
        ({"unit_code": f"P0{NUL}1"}, "unit_code"),
        ({"dossier_id": f"D{NUL}1"}, "dossier_id"),
    ],
)
async def test_nul_in_a_petition_is_a_422_with_the_field(
    client: httpx.AsyncClient, settings: FeedbackSettings, over: dict[str, str], field: str
) -> None:
    response = await client.post("/api/v1/petitions", json=petition(**over), headers=gateway_headers(settings))
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


@pytest.mark.parametrize("control", ["\u202a", "\u202e", "\u2066", "\u2069"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("content", "Hồ sơ chậm trả kết quả {}quá 5 ngày"),
        ("title", "Chậm trả kết quả{}"),
        ("contact", "{}0912 345 678"),
        ("unit_code", "P01{}"),
    ],
)
async def test_direction_controls_in_a_petition_are_a_422_with_the_field(
    client: httpx.AsyncClient, settings: FeedbackSettings, control: str, field: str, value: str
) -> None:
    # A right-to-left override (U+202E) or an isolate turns the printed text after it around.
    response = await client.post(
        "/api/v1/petitions", json=petition(**{field: value.format(control)}), headers=gateway_headers(settings)
    )
    assert response.status_code == 422, response.text
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == field and "U+202E" in detail["reason"], detail


async def test_a_direction_control_in_a_rating_comment_is_a_422(
    client: httpx.AsyncClient, settings: FeedbackSettings
) -> None:
    rating = {"dossier_id": "D-RTL-1", "rating_code": "ABCDEFGH", "level": "satisfied", "comment": "tốt \u202equá"}
    response = await client.post("/api/v1/ratings", json=rating, headers=gateway_headers(settings))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "comment"


async def test_nul_in_a_rating_comment_or_criterion_is_a_422(
    client: httpx.AsyncClient, settings: FeedbackSettings
) -> None:
    rating = {"dossier_id": "D-NUL-1", "rating_code": "ABCDEFGH", "level": "satisfied"}
    for over, field in (({"comment": f"tốt{NUL}"}, "comment"), ({"criteria": {f"c{NUL}": 2}}, "criteria")):
        response = await client.post("/api/v1/ratings", json={**rating, **over}, headers=gateway_headers(settings))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"].startswith(field)


async def test_nul_in_staff_text_and_queries_is_a_422(client: httpx.AsyncClient, settings: FeedbackSettings) -> None:
    created = await file(client, settings)
    officer = gateway_headers(settings, staff("P01"))
    answer = await client.post(
        f"/api/v1/petitions/{created['petition_id']}/answer", json={"answer": f"x{NUL}"}, headers=officer
    )
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == "answer"
    for path, params in (
        (f"/api/v1/petitions/{created['petition_id']}", {"access_code": f"A{NUL}"}),
        ("/api/v1/petitions", {"unit": f"P{NUL}"}),
        ("/api/v1/petitions", {"status": f"x{NUL}"}),
        ("/api/v1/ratings", {"unit": f"P{NUL}"}),
    ):
        response = await client.get(path, params=params, headers=officer)
        assert response.status_code == 422, (path, response.text)


@pytest.mark.parametrize("path", ["/api/v1/ratings", "/api/v1/petitions"])
async def test_huge_offsets_are_a_422(client: httpx.AsyncClient, settings: FeedbackSettings, path: str) -> None:
    officer = gateway_headers(settings, staff("P01"))
    response = await client.get(path, params={"offset": 10**20}, headers=officer)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "offset"
    assert (await client.get(path, params={"offset": 1_000_000}, headers=officer)).status_code == 200


@pytest.mark.parametrize("pid", ["PA%0A", "PA%00X", "a" * 40, "PA-1", "PA%20X"])
async def test_odd_petition_ids_in_the_path_are_a_422(
    client: httpx.AsyncClient, settings: FeedbackSettings, pid: str
) -> None:
    officer = gateway_headers(settings, staff("P01"))
    for method, suffix, body in (("GET", "", None), ("POST", "/answer", {"answer": "ok"}), ("POST", "/publish", None)):
        response = await client.request(method, f"/api/v1/petitions/{pid}{suffix}", json=body, headers=officer)
        assert response.status_code == 422, (method, suffix, response.text)


async def test_the_follow_form_says_when_the_petition_is_locked(
    client: httpx.AsyncClient, settings: FeedbackSettings
) -> None:
    created = await file(client, settings)
    at = address()
    form = {"petition_id": created["petition_id"], "access_code": "WRONGWRG"}
    for _ in range(5):
        wrong = await client.post("/petition/follow", data=form, headers=gateway_headers(settings, address=at))
        assert wrong.status_code == 404
    right = {**form, "access_code": created["access_code"]}
    locked = await client.post("/petition/follow", data=right, headers=gateway_headers(settings, address=at))
    assert locked.status_code == 423
    assert "quá nhiều lần" in locked.text


@pytest.mark.parametrize("pid", ["PA%25X", "PA%3Fx=1", "PA%23top", "P%C4%90"])
async def test_the_language_switch_links_back_to_the_same_odd_path(
    client: httpx.AsyncClient, settings: FeedbackSettings, pid: str
) -> None:
    # A petition id typed into the address bar comes back in the switch's link encoded as it
    # came: a bare '%' (or a '?', a '#') in it made a link to another page, or none.
    page = await client.get(f"/petition/{pid}", headers=gateway_headers(settings))
    assert page.status_code == 200, page.text
    assert f'href="/petition/{pid.replace("=", "%3D")}?lang=en"' in page.text
