"""C1 control characters (U+0080–U+009F) are refused by feedback's API as ingest refuses them: a
422 naming the field, as for any other control character (shared.text's one rule)."""

from __future__ import annotations

import httpx
import pytest

from services.feedback.settings import FeedbackSettings
from tests.integration.feedback.conftest import gateway_headers, staff
from tests.integration.feedback.test_petitions_api import file, petition

pytestmark = pytest.mark.integration

NEL, CSI = "\x85", "\x9b"  # "next line" of mis-decoded text, a terminal's escape


def refused_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert all("U+007F–U+009F" in d["reason"] for d in details), details
    return [d["field"] for d in details]


@pytest.mark.parametrize("control", [NEL, CSI])
@pytest.mark.parametrize(
    ("field", "value"),
    [("content", "Hồ sơ chậm trả{}kết quả quá 5 ngày"), ("title", "Chậm{}trả kết quả"), ("contact", "0912{}345")],
)
async def test_a_c1_control_in_a_petition_is_a_422_with_the_field(
    client: httpx.AsyncClient, settings: FeedbackSettings, control: str, field: str, value: str
) -> None:
    body = petition(**{field: value.format(control)})
    response = await client.post("/api/v1/petitions", json=body, headers=gateway_headers(settings))
    assert refused_fields(response) == [field]


async def test_a_c1_control_in_a_rating_staff_text_or_query_is_a_422(
    client: httpx.AsyncClient, settings: FeedbackSettings
) -> None:
    rating = {"dossier_id": "D-C1-1", "rating_code": "ABCDEFGH", "level": "satisfied", "comment": f"tốt{NEL}quá"}
    response = await client.post("/api/v1/ratings", json=rating, headers=gateway_headers(settings))
    assert refused_fields(response) == ["comment"]
    created = await file(client, settings)
    officer = gateway_headers(settings, staff("P01"))
    answer = await client.post(
        f"/api/v1/petitions/{created['petition_id']}/answer", json={"answer": f"Đã xử lý{CSI}xong"}, headers=officer
    )
    assert refused_fields(answer) == ["answer"]
    listed = await client.get("/api/v1/petitions", params={"unit": f"P{NEL}01"}, headers=officer)
    assert refused_fields(listed) == ["unit"]


async def test_a_multi_line_petition_keeps_its_line_breaks(
    client: httpx.AsyncClient, settings: FeedbackSettings
) -> None:
    content = "Hồ sơ chậm trả kết quả:\r\n- quá 5 ngày\n\t- chưa được giải thích"
    created = await file(client, settings, content=content)
    officer = gateway_headers(settings, staff("P01"))
    staff_view = await client.get(f"/api/v1/petitions/{created['petition_id']}", headers=officer)
    assert staff_view.status_code == 200 and staff_view.json()["content"] == content, staff_view.text
