"""Reporting's housekeeping drops a finished dossier a while after it finished AND after its last
event arrived: dropped by its finish time alone, an event of the same dossier coming after the
sweep (a back-fill in any order, a resend) recreated it from that event only — a completed
dossier came back open and overdue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_dossier_events
from services.reporting.settings import ReportingSettings
from services.reporting.worker import drop_finished_dossiers
from shared.calendar import VN_TZ
from tests.integration.reporting.conftest import as_staff, message

pytestmark = pytest.mark.integration


def event(kind: str, when: datetime, dossier: str, **data: Any) -> dict[str, Any]:
    return {
        "source": "tms-review",
        "event_id": uuid.uuid4().hex,
        "type": kind,
        "occurred_at": when.isoformat(),
        "data": {"dossier_id": dossier, **data},
    }


async def _deliver(reporting: Reporting, *events: dict[str, Any]) -> None:
    batch = {"events": list(events), "accepted_at": datetime.now(UTC).isoformat()}
    async with reporting.uow() as uow:
        await on_dossier_events(message("ingest.dossier-events.v1", batch), uow)


async def _warned(client: httpx.AsyncClient, settings: ReportingSettings, dossier: str) -> dict[str, str]:
    answer = await client.get("/api/v1/warnings", params={"unit": "P07"}, headers=as_staff(settings, "P07"))
    assert answer.status_code == 200, answer.text
    return {i["dossier_id"]: i["kind"] for i in answer.json()["items"] if i["dossier_id"] == dossier}


async def test_backfill_completed_before_received_across_a_sweep_stays_finished(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    # A back-fill of last year: the completion arrives first, the hourly sweep runs, then the receipt.
    now = datetime.now(VN_TZ)
    d = f"HS-REV-{uuid.uuid4().hex[:8]}"
    received = event(
        "dossier.received", now - timedelta(days=401), d, unit_code="P07", procedure_code="T.DKT.01", officer_id="cb"
    )
    completed = event("dossier.completed", now - timedelta(days=400), d, unit_code="P07")
    await _deliver(reporting, completed)
    await drop_finished_dossiers(reporting, datetime.now(UTC))
    await _deliver(reporting, received)
    assert await _warned(client, settings, d) == {}, "a completed dossier is listed again"


async def test_resent_receipt_after_the_sweep_does_not_reopen_a_completed_dossier(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    # Completed 50 days ago (past the 45 kept days); the integrator resends its receipt (idempotent resend).
    now = datetime.now(VN_TZ)
    d = f"HS-REV-{uuid.uuid4().hex[:8]}"
    received = event(
        "dossier.received", now - timedelta(days=60), d, unit_code="P07", procedure_code="T.DKT.01", officer_id="cb"
    )
    await _deliver(reporting, received, event("dossier.completed", now - timedelta(days=50), d))
    assert await _warned(client, settings, d) == {}
    await drop_finished_dossiers(reporting, datetime.now(UTC))
    await _deliver(reporting, received)
    assert await _warned(client, settings, d) == {}, "a completed dossier is listed again"
