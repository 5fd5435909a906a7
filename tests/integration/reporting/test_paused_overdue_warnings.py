"""A supplement request after the due time cannot make an overdue dossier on time (events.md;
scoring locks it overdue): the warnings keep listing it as overdue while the clock is paused. A
request before the due time pauses the clock, and the paused dossier is neither due nor overdue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_dossier_events
from services.reporting.settings import ReportingSettings
from shared.calendar import VN_TZ
from tests.integration.reporting.conftest import as_staff, message

pytestmark = pytest.mark.integration


def event(kind: str, when: datetime, dossier: str, **data: Any) -> dict[str, Any]:
    return {
        "source": "tms-fig",
        "event_id": uuid.uuid4().hex,
        "type": kind,
        "occurred_at": when.isoformat(),
        "data": {"dossier_id": dossier, **data},
    }


async def test_a_request_after_the_due_time_keeps_the_dossier_overdue(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    now = datetime.now(VN_TZ)
    late, early = f"HS-FIG-{uuid.uuid4().hex[:8]}", f"HS-FIG-{uuid.uuid4().hex[:8]}"
    received = {"unit_code": "P07", "procedure_code": "T.DKT.01", "officer_id": "cb-fig"}
    events = [
        # Due three working days after a receipt three weeks ago; the request came a day ago.
        event("dossier.received", now - timedelta(days=21), late, **received),
        event("dossier.supplement_requested", now - timedelta(days=1), late, reason="thiếu tờ khai"),
        # Received an hour ago, asked for documents at once: paused well before its due time.
        event("dossier.received", now - timedelta(hours=1), early, **received),
        event("dossier.supplement_requested", now - timedelta(minutes=30), early, reason="thiếu tờ khai"),
    ]
    batch = {"events": events, "accepted_at": datetime.now(UTC).isoformat()}
    async with reporting.uow() as uow:
        await on_dossier_events(message("ingest.dossier-events.v1", batch), uow)
    answer = await client.get(
        "/api/v1/warnings", params={"unit": "P07"}, headers=as_staff(settings, "P07", "unit_head")
    )
    assert answer.status_code == 200, answer.text
    kinds = {i["dossier_id"]: i["kind"] for i in answer.json()["items"] if i["dossier_id"]}
    assert kinds.get(late) == "overdue"
    assert early not in kinds
