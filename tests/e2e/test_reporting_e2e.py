"""Reporting through the running platform: a dossier due soon shows in its unit's warnings
within seconds of being sent, and leaves them as soon as it completes; the public ranking and
the sign-in answer through the gateway."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as clock
from typing import Any

import httpx
import pytest

from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from shared.calendar import VN_TZ, WorkingCalendar

pytestmark = pytest.mark.e2e
DEADLINE_S = 30.0


def _event(source: str, type_: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "type": type_, "occurred_at": at.isoformat(), "source": source, "data": data}


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {DEADLINE_S} s: {what}")


def test_due_soon_dossier_enters_and_leaves_the_warnings(gateway: httpx.Client, make_key: Any) -> None:
    key = make_key("tms-reporting-e2e", ["P07"])
    head = mint_dev_token(GatewaySettings(), sub="head-p07", role="unit_head", unit="P07")
    other = mint_dev_token(GatewaySettings(), sub="head-p08", role="unit_head", unit="P08")
    dossier = f"HS-E2E-{uuid.uuid4().hex[:10]}"
    now = datetime.now(VN_TZ)
    received = _event(
        "tms-reporting-e2e",
        "dossier.received",
        now - timedelta(hours=2),
        {
            "dossier_id": dossier,
            "procedure_code": "T.DKT.01",
            "unit_code": "P07",
            "due_at": (now + timedelta(hours=5)).isoformat(),
            "channel": "counter",
            "online_level": "none",
            "applicant_type": "business",
            "officer_id": "P07.CB-12",
        },
    )
    sent = gateway.post("/api/v1/events", json=[received], headers={"Authorization": f"Bearer {key}"})
    assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text

    def items() -> list[dict[str, Any]]:
        r = gateway.get("/api/v1/warnings", params={"unit": "P07"}, headers={"Authorization": f"Bearer {head}"})
        assert r.status_code == 200, r.text
        return [i for i in r.json()["items"] if i.get("dossier_id") == dossier]

    _wait_for(lambda: any(i["kind"] == "due_soon" and i["officer_id"] == "P07.CB-12" for i in items()), "due_soon")
    refused = gateway.get("/api/v1/warnings", params={"unit": "P07"}, headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 403
    done = _event(
        "tms-reporting-e2e",
        "dossier.completed",
        now,
        {"dossier_id": dossier, "outcome": "approved", "result_digitized": True, "officer_id": "P07.CB-12"},
    )
    sent = gateway.post("/api/v1/events", json=[done], headers={"Authorization": f"Bearer {key}"})
    assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text
    _wait_for(lambda: not items(), "the completed dossier leaves the warnings")


def test_public_ranking_and_sign_in_through_the_gateway(gateway: httpx.Client) -> None:
    home = gateway.get("/")
    assert home.status_code == 200 and "Bảng xếp hạng" in home.text
    assert gateway.get("/ranking/P01").status_code == 200
    assert gateway.get("/ranking/methodology").status_code == 200
    # A browser of its own: the sign-in cookie must not leak into the shared client.
    with httpx.Client(base_url=gateway.base_url, timeout=30) as browser:
        anonymous = browser.get("/dashboard", follow_redirects=False)
        assert anonymous.status_code == 303
        signed = browser.post("/dashboard/sign-in", data={"sub": "lanh-dao-ct"}, follow_redirects=False)
        assert signed.status_code == 303 and browser.cookies.get("sqi_session")
        page = browser.get("/dashboard")
        assert page.status_code == 200 and "lanh-dao-ct" in page.text


def test_a_declared_day_off_moves_a_due_time_in_the_warnings(
    gateway: httpx.Client, make_key: Any, admin_token: str
) -> None:
    """Scoring's admin declares a day off → CalendarChanged through scoring's outbox and the
    broker → reporting refolds the open dossier's due time; withdrawn → back again."""
    key = make_key("tms-calendar-e2e", ["P07"])
    head = {"Authorization": f"Bearer {mint_dev_token(GatewaySettings(), sub='h', role='unit_head', unit='P07')}"}
    admin = {"Authorization": f"Bearer {admin_token}"}
    dossier = f"HS-E2E-CAL-{uuid.uuid4().hex[:8]}"
    received_at = datetime.combine(datetime.now(VN_TZ).date() - timedelta(days=14), clock(9), tzinfo=VN_TZ)
    event = _event(
        "tms-calendar-e2e",
        "dossier.received",
        received_at,
        {
            "dossier_id": dossier,
            "procedure_code": "T.DKT.01",  # 3 working days, no due_at: computed (overdue by now)
            "unit_code": "P07",
            "channel": "counter",
            "online_level": "none",
            "applicant_type": "citizen",
            "officer_id": "P07.CB-07",
        },
    )
    sent = gateway.post("/api/v1/events", json=[event], headers={"Authorization": f"Bearer {key}"})
    assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text

    def due_at() -> datetime | None:
        r = gateway.get("/api/v1/warnings", params={"unit": "P07"}, headers=head)
        assert r.status_code == 200, r.text
        found = [i for i in r.json()["items"] if i.get("dossier_id") == dossier]
        return datetime.fromisoformat(found[0]["due_at"]) if found else None

    _wait_for(lambda: due_at() is not None, "the overdue dossier in the warnings")
    before = due_at()
    day_off = WorkingCalendar().add_working_days(received_at.date(), 1)  # the first working day after receipt
    expected = WorkingCalendar(extra_days_off=[day_off]).due_after(received_at, 3)
    assert before is not None and expected > before
    put = gateway.put(f"/api/v1/calendar/days/{day_off.isoformat()}", json={"kind": "day_off"}, headers=admin)
    assert put.status_code in (200, 201), put.text
    try:
        _wait_for(lambda: due_at() == expected, "the due time moved by the declared day off")
    finally:
        gone = gateway.delete(f"/api/v1/calendar/days/{day_off.isoformat()}", headers=admin)
        assert gone.status_code == 204, gone.text
    _wait_for(lambda: due_at() == before, "the due time back once the day is withdrawn")
