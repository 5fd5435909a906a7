"""The read model fed by real handler calls against PostgreSQL, read through the reporting app."""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_dossier_events, on_score_alert, on_scores_updated
from services.reporting.settings import ReportingSettings
from shared.calendar import VN_TZ
from shared.messaging.topology import IncomingMessage
from tests.integration.reporting.conftest import as_staff, message

pytestmark = pytest.mark.integration

UNITS = Path(__file__).resolve().parents[3] / "data" / "reference" / "units.csv"
PERIOD = "2025-09"


def provinces() -> list[tuple[str, str]]:
    with UNITS.open(encoding="utf-8") as fh:
        return [(r["code"], r["name"]) for r in csv.DictReader(fh) if r["level"] == "province"]


def score_body(
    code: str, total: float, rank: int | None, *, provisional: bool = False, period: str = PERIOD
) -> dict[str, Any]:
    return {
        "period": period,
        "computed_at": datetime.now(UTC).isoformat(),
        "units": [
            {
                "unit_code": code,
                "scores": {
                    "tax-2025": {
                        "total": total,
                        "grade": "excellent" if total >= 90 else "good" if total >= 80 else "fair",
                        "rank": rank,
                        "dossiers": 5 if provisional else 400,
                        "provisional": provisional,
                        "rank_delta": 1 if rank else None,
                        "groups": {"G1": 15, "G2": 18, "G3": 20, "G4": 19, "G5": round(total - 72, 2)},
                        "indicators": [
                            {
                                "id": "2.1",
                                "numerator": 380,
                                "denominator": 400,
                                "ratio": 95,
                                "points": 19,
                                "max_points": 20,
                            },
                            {
                                "id": "1.4",
                                "numerator": 390,
                                "denominator": 400,
                                "ratio": 97.5,
                                "points": 5.85,
                                "max_points": 6,
                            },
                            # 2.2's numerator is a sum of working days, 4.3's a product with the sync rate.
                            {
                                "id": "2.2",
                                "numerator": 1097.4535196131112,
                                "denominator": 400,
                                "ratio": 2.74,
                                "points": 0,
                                "max_points": 0,
                            },
                        ],
                    }
                },
            }
        ],
    }


async def apply(reporting: Reporting, handler: Any, msg: IncomingMessage) -> None:
    async with reporting.uow() as uow:
        await handler(msg, uow)


@pytest.fixture(scope="module")
async def month(reporting: Reporting) -> list[tuple[str, str]]:
    units = provinces()
    for i, (code, _) in enumerate(units):
        provisional = code == "CT.DNL"
        body = score_body(code, 95 - i * 0.5, None if provisional else i + 1, provisional=provisional)
        await apply(reporting, on_scores_updated, message("scoring.scores-updated.v3", body))
    return units


async def test_public_ranking_lists_every_province_with_grade_and_data_time(
    client: httpx.AsyncClient, month: list[tuple[str, str]]
) -> None:
    page = await client.get("/", params={"period": PERIOD})
    assert page.status_code == 200
    html = page.text
    for _, name in month:
        assert name in html
    assert "Dữ liệu tính đến" in html and "Xuất sắc" in html and "Tháng 9/2025" in html
    assert "Chưa xếp hạng (ít hồ sơ)" in html  # the provisional unit is listed apart
    assert 'href="/rate"' in html and 'href="/petition"' in html
    english = await client.get("/", params={"period": PERIOD, "lang": "en"})
    assert "Data as of" in english.text and "Excellent" in english.text
    # Without a period: the latest closed month that has scores.
    latest = await client.get("/")
    assert "Tháng 9/2025" in latest.text


async def test_province_page_shows_indicator_figures_and_no_dossier(client: httpx.AsyncClient, month: Any) -> None:
    page = await client.get("/ranking/P01", params={"period": PERIOD})
    assert page.status_code == 200
    assert "Thuế Thành phố Hà Nội" in page.text
    assert ">380<" in page.text and ">400<" in page.text and "5.85" in page.text
    assert "officer" not in page.text.lower()
    assert (await client.get("/ranking/NOPE")).status_code == 404


async def test_a_late_older_score_never_overwrites_a_newer_one(
    reporting: Reporting, client: httpx.AsyncClient, month: Any
) -> None:
    newer = score_body("P02", 70.0, 30)
    older = score_body("P02", 99.0, 1)
    older["computed_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    await apply(reporting, on_scores_updated, message("scoring.scores-updated.v3", newer))
    await apply(reporting, on_scores_updated, message("scoring.scores-updated.v3", older))
    page = await client.get("/ranking/P02", params={"period": PERIOD})
    assert ">70<" in page.text and "Khá" in page.text


def dossier_batch(events: list[dict[str, Any]], source: str = "tms-test") -> dict[str, Any]:
    return {
        "events": [
            {"source": source, "event_id": uuid.uuid4().hex, "type": t, "occurred_at": at, "data": data}
            for t, at, data in ((e["type"], e["at"], e["data"]) for e in events)
        ],
        "accepted_at": datetime.now(UTC).isoformat(),
    }


async def test_due_soon_dossier_appears_then_leaves_when_completed(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    dossier = f"HS-{uuid.uuid4().hex[:10]}"
    overdue = f"HS-{uuid.uuid4().hex[:10]}"
    now = datetime.now(VN_TZ)
    due = now + timedelta(hours=3)
    received = {
        "type": "dossier.received",
        "at": (now - timedelta(days=2)).isoformat(),
        "data": {
            "dossier_id": dossier,
            "unit_code": "P03",
            "procedure_code": "T.DKT.01",
            "officer_id": "cb-07",
            "due_at": due.isoformat(),
        },
    }
    # No due_at: computed from the procedure's 3 working days, received two weeks ago → overdue.
    late = {
        "type": "dossier.received",
        "at": (now - timedelta(days=14)).isoformat(),
        "data": {"dossier_id": overdue, "unit_code": "P03", "procedure_code": "T.DKT.01", "officer_id": "cb-09"},
    }
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch([received, late])))
    answer = await client.get(
        "/api/v1/warnings", params={"unit": "P03"}, headers=as_staff(settings, "P03", "unit_head")
    )
    assert answer.status_code == 200, answer.text
    items = {i["dossier_id"]: i for i in answer.json()["items"] if i["dossier_id"]}
    assert items[dossier]["kind"] == "due_soon" and items[dossier]["officer_id"] == "cb-07"
    assert items[overdue]["kind"] == "overdue" and items[overdue]["officer_id"] == "cb-09"
    # The national leader sees it too (subtree); another province's head is refused.
    national = await client.get("/api/v1/warnings", params={"unit": "P03"}, headers=as_staff(settings, "CT"))
    assert any(i["dossier_id"] == dossier for i in national.json()["items"])
    other = await client.get("/api/v1/warnings", params={"unit": "P03"}, headers=as_staff(settings, "P04", "unit_head"))
    assert other.status_code == 403 and other.json()["error"]["details"][0]["field"] == "unit"
    assert (await client.get("/api/v1/warnings", params={"unit": "P03"})).status_code == 401
    done = {
        "type": "dossier.completed",
        "at": now.isoformat(),
        "data": {"dossier_id": dossier, "outcome": "approved", "officer_id": "cb-07"},
    }
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch([done])))
    # A late duplicate of "received" does not reopen it.
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch([received])))
    after = await client.get("/api/v1/warnings", params={"unit": "P03"}, headers=as_staff(settings, "P03", "unit_head"))
    ids = {i["dossier_id"] for i in after.json()["items"]}
    assert dossier not in ids and overdue in ids


async def test_score_alerts_become_warnings(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings
) -> None:
    at = datetime.now(UTC).isoformat()
    drop = {
        "period": PERIOD,
        "methodology": "tax-2025",
        "unit_code": "P05",
        "previous_total": "88.5",
        "total": "80",
        "computed_at": at,
    }
    grade = {
        "period": PERIOD,
        "methodology": "tax-2025",
        "unit_code": "P05",
        "previous_grade": "good",
        "grade": "fair",
        "total": "79",
        "computed_at": at,
    }
    await apply(reporting, on_score_alert, message("scoring.score-dropped.v1", drop))
    await apply(reporting, on_score_alert, message("scoring.grade-changed.v1", grade))
    answer = await client.get(
        "/api/v1/warnings", params={"unit": "P05"}, headers=as_staff(settings, "P05", "unit_head")
    )
    kinds = {i["kind"]: i for i in answer.json()["items"]}
    assert "8.5" in kinds["score_drop"]["detail"] and "Tốt → Khá" in kinds["grade_change"]["detail"]


async def test_dashboard_scope_sign_in_and_drill_down(
    client: httpx.AsyncClient, settings: ReportingSettings, month: Any
) -> None:
    anonymous = await client.get("/dashboard")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/dashboard/sign-in")
    leader = await client.get("/dashboard", params={"period": PERIOD}, headers=as_staff(settings, "CT"))
    assert leader.status_code == 200
    assert leader.text.count('<th scope="row">') == len(month)
    mine = await client.get(
        "/dashboard/units/P01", params={"period": PERIOD}, headers=as_staff(settings, "P01", "unit_head")
    )
    assert mine.status_code == 200 and "<svg" in mine.text
    assert "Điểm bị mất" in mine.text and ">0.15<" in mine.text  # 1.4: 5.85 of 6 points
    refused = await client.get("/dashboard/units/P02", headers=as_staff(settings, "P01", "unit_head"))
    assert refused.status_code == 403
    drill = await client.get(
        "/dashboard/units/P01/indicators/2.1", params={"period": PERIOD}, headers=as_staff(settings, "CT")
    )
    assert drill.status_code == 200 and "tạm ngừng" in drill.text  # scoring is not running here
    form = await client.get("/dashboard/sign-in")
    assert form.status_code == 200 and "CT" in form.text
    signed = await client.post("/dashboard/sign-in", data={"sub": "truong-p01"})
    assert signed.status_code == 303 and "sqi_session=" in signed.headers["set-cookie"]


async def test_ranking_exports(client: httpx.AsyncClient, settings: ReportingSettings, month: Any) -> None:
    csv_answer = await client.get(
        "/api/v1/reports/ranking.csv", params={"period": PERIOD, "level": "province"}, headers=as_staff(settings, "CT")
    )
    assert csv_answer.status_code == 200, csv_answer.text
    assert csv_answer.content.startswith(b"\xef\xbb\xbf")
    assert "Thuế Thành phố Hà Nội" in csv_answer.content.decode("utf-8-sig")
    refused = await client.get(
        "/api/v1/reports/ranking.csv",
        params={"period": PERIOD, "parent": "P02"},
        headers=as_staff(settings, "P01", "unit_head"),
    )
    assert refused.status_code == 403
    bad = await client.get("/api/v1/reports/ranking.csv", params={"period": "nope"}, headers=as_staff(settings, "CT"))
    assert bad.status_code == 422


async def test_finished_dossiers_are_dropped_after_the_keep_period(reporting: Reporting) -> None:
    from sqlalchemy import select

    from services.reporting.adapters.tables import dossier as dossier_table
    from services.reporting.worker import drop_finished_dossiers

    old, recent = f"HS-{uuid.uuid4().hex[:10]}", f"HS-{uuid.uuid4().hex[:10]}"
    long_ago = datetime.now(VN_TZ) - timedelta(days=90)
    events = [
        {"type": "dossier.received", "at": long_ago.isoformat(), "data": {"dossier_id": old, "unit_code": "P06"}},
        {"type": "dossier.withdrawn", "at": (long_ago + timedelta(days=1)).isoformat(), "data": {"dossier_id": old}},
        {"type": "dossier.received", "at": long_ago.isoformat(), "data": {"dossier_id": recent, "unit_code": "P06"}},
    ]
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch(events)))

    async def left() -> set[str]:
        async with reporting.sessions() as session:
            rows = await session.execute(
                select(dossier_table.c.dossier_id).where(dossier_table.c.dossier_id.in_([old, recent]))
            )
            return set(rows.scalars())

    await drop_finished_dossiers(reporting, datetime.now(UTC))
    assert await left() == {old, recent}  # its events arrived just now (a back-fill may send more)
    later = datetime.now(UTC) + timedelta(days=reporting.settings.reporting_finished_keep_days + 1)
    assert await drop_finished_dossiers(reporting, later) >= 1
    assert await left() == {recent}  # an open dossier stays, however old
