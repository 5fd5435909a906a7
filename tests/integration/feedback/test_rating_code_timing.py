"""A wrong rating code costs the same work whether or not the dossier exists.

For a dossier feedback does not know, the code is tried against every unit of the tree (one
HMAC each, after reading the unit list); for a known one it was checked once. The 403 bodies
were the same, but the answer's time was not (≈ 6 ms for 750 units against microseconds): a
citizen could learn which dossier ids exist from how fast a wrong code was refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

import shared.rating_code
from services.feedback.bootstrap import Feedback
from services.feedback.settings import FeedbackSettings
from tests.integration.feedback.conftest import gateway_headers, sql

pytestmark = pytest.mark.integration


@pytest.fixture
def digests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many code digests (HMACs) the requests computed."""
    counted = [0]
    real = shared.rating_code._digest_chars

    def counting(key: shared.rating_code.RatingKey, message: bytes, count: int) -> str:
        counted[0] += 1
        return real(key, message, count)

    monkeypatch.setattr(shared.rating_code, "_digest_chars", counting)
    yield counted


def wrong_code_for(feedback: Feedback, dossier: str) -> str:
    """A code of the current key version (so it is really checked) that is not the dossier's."""
    right = feedback.rating_codes.issue(dossier, "P01")
    tail = "2222222" if right[1:] != "2222222" else "3333333"
    return right[0] + tail


async def refused_work(
    client: httpx.AsyncClient, settings: FeedbackSettings, digests: list[int], dossier: str, code: str
) -> int:
    before = digests[0]
    answer = await client.post(
        "/api/v1/ratings",
        json={"dossier_id": dossier, "rating_code": code, "level": "satisfied"},
        headers=gateway_headers(settings, address=f"198.51.100.{uuid.uuid4().int % 200 + 1}"),
    )
    assert answer.status_code == 403, answer.text
    return digests[0] - before


async def test_a_wrong_code_costs_the_same_for_a_known_and_an_unknown_dossier(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings, digests: list[int]
) -> None:
    known = f"HS-{uuid.uuid4().hex[:12].upper()}"
    unknown = f"HS-{uuid.uuid4().hex[:12].upper()}"
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=known)
    units = len(await sql(feedback, "SELECT code FROM feedback.unit"))
    assert units > 10  # the reference tree is loaded: the difference is worth measuring

    on_known = await refused_work(client, settings, digests, known, wrong_code_for(feedback, known))
    on_unknown = await refused_work(client, settings, digests, unknown, wrong_code_for(feedback, unknown))

    assert on_unknown >= units  # every unit was tried
    assert abs(on_known - on_unknown) <= 1, (on_known, on_unknown)


async def test_the_right_code_of_a_known_dossier_is_still_checked_once(
    client: httpx.AsyncClient, feedback: Feedback, settings: FeedbackSettings, digests: list[int]
) -> None:
    """Only refusals are padded: a citizen with the right code pays one HMAC, as before."""
    dossier = f"HS-{uuid.uuid4().hex[:12].upper()}"
    await sql(feedback, "INSERT INTO feedback.dossier_unit VALUES (:d, 'P01', now())", d=dossier)
    answer = await client.post(
        "/api/v1/ratings",
        json={"dossier_id": dossier, "rating_code": feedback.rating_codes.issue(dossier, "P01"), "level": "satisfied"},
        headers=gateway_headers(settings),
    )
    assert answer.status_code == 201, answer.text
    # The code issued above was one digest; the check of the request one more.
    assert digests[0] == 2
