"""Feedback's PetitionChanged in reporting's read model: the latest version wins; the unit page
lists the petitions still waiting and those past their deadline, with no personal data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.reporting.adapters.changes import current_versions
from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_petition_changed
from services.reporting.settings import ReportingSettings
from tests.integration.reporting.conftest import as_staff, message
from tests.integration.reporting.test_read_model import apply

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def petition(pid: str, version: int, status: str, *, received_days_ago: float, **extra: Any) -> dict[str, Any]:
    received = NOW - timedelta(days=received_days_ago)
    body: dict[str, Any] = {
        "petition_id": pid,
        "version": version,
        "change": "receive",
        "changed_at": (received + timedelta(hours=version)).isoformat(),
        "unit_code": "P15",
        "dossier_id": None,
        "category": "thue-tncn",
        "classification": "tthc",
        "status": status,
        "received_at": received.isoformat(),
        "clock_started_at": received.isoformat(),
        "refuse_due_at": (received + timedelta(days=2)).isoformat(),
        "info_due_at": (received + timedelta(days=7)).isoformat(),
        "answer_due_at": (received + timedelta(days=21)).isoformat(),
        "publish_due_at": None,
        "refused_at": None,
        "info_requested_at": None,
        "answered_at": None,
        "published_at": None,
        "handled_on_time": None,
        "transfers": 0,
        "likes": 0,
        "dislikes": 0,
        "petitioned_again": False,
    }
    return body | extra


async def send(reporting: Reporting, body: dict[str, Any]) -> None:
    await apply(reporting, on_petition_changed, message("feedback.petition-changed.v1", body))


async def test_waiting_and_overdue_petitions_on_the_unit_page(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    fresh, late, done, unpublished = (f"PA-{tag}-{n}" for n in ("MOI", "TRE", "XONG", "CHUACONGKHAI"))
    async with reporting.sessions() as session:
        before = (await current_versions(session))["warnings"]
    await send(reporting, petition(fresh, 1, "received", received_days_ago=1))
    await send(reporting, petition(late, 1, "received", received_days_ago=40))  # answer was due 19 days ago
    answered = (NOW - timedelta(days=9)).isoformat()
    await send(
        reporting,
        petition(
            unpublished,
            2,
            "answered",
            received_days_ago=10,
            answered_at=answered,
            publish_due_at=(NOW - timedelta(days=6)).isoformat(),
            handled_on_time=True,
        ),
    )
    published = NOW.isoformat()
    await send(reporting, petition(done, 3, "published", received_days_ago=5, published_at=published))
    await send(reporting, petition(done, 1, "received", received_days_ago=5))  # an older version, late: ignored
    async with reporting.sessions() as session:
        assert (await current_versions(session))["warnings"] > before
    page = await client.get("/dashboard/units/P15", headers=as_staff(settings, "P15", "unit_head"))
    assert page.status_code == 200, page.text
    html = page.text
    section = html[html.index('id="petitions"') :]
    assert fresh in section and late in section and unpublished in section and done not in section
    assert "3 phản ánh, kiến nghị đang chờ xử lý; 2 đã quá hạn." in section
    assert "Đã trả lời, chưa công khai" in section and "Thủ tục hành chính" in section
    rows = section[: section.index("</table>")].split("<tr")
    overdue_rows = [r for r in rows if 'class="w-overdue"' in r]
    assert {late, unpublished} == {pid for pid in (fresh, late, unpublished) if any(pid in r for r in overdue_rows)}
    assert section.index(late) < section.index(fresh)  # overdue first
    english = await client.get("/dashboard/units/P15", params={"lang": "en"}, headers=as_staff(settings, "CT"))
    assert "Petitions waiting to be handled" in english.text and "past their deadline" in english.text
    # Another province's head sees none of it.
    other = await client.get("/dashboard/units/P15", headers=as_staff(settings, "P16", "unit_head"))
    assert other.status_code == 403 and fresh not in other.text
