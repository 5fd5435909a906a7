"""Units that are not open-ended today still count: a period before the 1 July 2025
reorganisation is reported on the units of its own time (the 63 former departments, closed on
30 June 2025), a unit whose closure is scheduled is still one of today's, and an open dossier of
a former department belongs to its successor's subtree (as scoring attributes it)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.reporting.adapters.tables import unit
from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_dossier_events, on_scores_updated
from services.reporting.settings import ReportingSettings
from shared.calendar import VN_TZ
from shared.unit_copy import upsert_units
from tests.integration.reporting.conftest import as_staff, message

pytestmark = pytest.mark.integration

FORMER = "P01.T63.1"  # Cục Thuế Thành phố Hà Nội, merged into P01 on 1 July 2025
CLOSING = "P01.FIG.CLOSING"  # a local office of P01 whose closure is already scheduled
BEFORE = "2025-06"
AFTER = "2026-10"


def figures(total: str, rank: int | None, *, level: str, parent: str, name: str) -> dict[str, Any]:
    return {
        "total": total,
        "grade": "good" if float(total) >= 80 else "fair",
        "rank": rank,
        "rank_delta": None,
        "dossiers": 400,
        "provisional": False,
        "groups": {"G1": "15.00", "G2": "18.00"},
        "indicators": [],
        "unit_name": name,
        "level": level,
        "parent_code": parent,
    }


def scores(period: str, units: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "period": period,
        "computed_at": datetime.now(UTC).isoformat(),
        "units": [{"unit_code": c, "scores": {"tax-2025": s}} for c, s in units.items()],
    }


async def run(reporting: Reporting, handler: Any, routing_key: str, body: dict[str, Any]) -> None:
    async with reporting.uow() as uow:
        await handler(message(routing_key, body), uow)


@pytest.fixture(scope="module")
async def tree(reporting: Reporting) -> None:
    rows: list[dict[str, Any]] = [
        {
            "code": FORMER,
            "name": "Cục Thuế Thành phố Hà Nội",
            "level": "province",
            "parent_code": "CT",
            "valid_from": None,
            "valid_to": date(2025, 6, 30),
            "successor_code": "P01",
            "revision": 1,
        },
        {
            "code": CLOSING,
            "name": "Thuế cơ sở 99 Thành phố Hà Nội",
            "level": "local",
            "parent_code": "P01",
            "valid_from": date(2025, 7, 1),
            "valid_to": date(2099, 12, 31),
            "successor_code": None,
            "revision": 1,
        },
    ]
    async with reporting.uow() as uow:
        await upsert_units(unit, rows, uow=uow)
    before = {
        FORMER: figures("82.50", 1, level="province", parent="CT", name="Cục Thuế Thành phố Hà Nội"),
        "CT.DNL": figures("80.00", 2, level="province", parent="CT", name="Chi cục Thuế doanh nghiệp lớn"),
    }
    await run(reporting, on_scores_updated, "scoring.scores-updated.v3", scores(BEFORE, before))
    after = {CLOSING: figures("77.25", 1, level="local", parent="P01", name="Thuế cơ sở 99 Thành phố Hà Nội")}
    await run(reporting, on_scores_updated, "scoring.scores-updated.v3", scores(AFTER, after))


async def test_a_period_before_the_reorganisation_lists_the_departments_of_its_time(
    client: httpx.AsyncClient, settings: ReportingSettings, tree: None
) -> None:
    staff = as_staff(settings, "CT")
    ranking = await client.get("/api/v1/reports/ranking", params={"period": BEFORE, "level": "province"}, headers=staff)
    assert ranking.status_code == 200, ranking.text
    items = {i["unit_code"]: i for i in ranking.json()["items"]}
    assert set(items) == {FORMER, "CT.DNL"}  # scoring's ranking of June 2025
    assert items[FORMER]["total"] == 82.5 and items[FORMER]["rank"] == 1
    csv = await client.get("/api/v1/reports/ranking.csv", params={"period": BEFORE, "level": "province"}, headers=staff)
    assert csv.status_code == 200 and FORMER in csv.content.decode("utf-8-sig")
    page = await client.get(f"/dashboard/units/{FORMER}", params={"period": BEFORE}, headers=staff)
    assert page.status_code == 200, page.text
    assert "82.5" in page.text


async def test_a_unit_whose_closure_is_scheduled_is_still_in_its_province(
    client: httpx.AsyncClient, settings: ReportingSettings, tree: None
) -> None:
    staff = as_staff(settings, "P01", "unit_head")
    ranking = await client.get("/api/v1/reports/ranking", params={"period": AFTER, "level": "local"}, headers=staff)
    assert ranking.status_code == 200, ranking.text
    assert [i["unit_code"] for i in ranking.json()["items"]] == [CLOSING]
    page = await client.get(f"/dashboard/units/{CLOSING}", params={"period": AFTER}, headers=staff)
    assert page.status_code == 200 and "77.25" in page.text


async def test_an_open_dossier_of_a_former_department_warns_its_successor(
    reporting: Reporting, client: httpx.AsyncClient, settings: ReportingSettings, tree: None
) -> None:
    dossier = f"HS-FIG-{uuid.uuid4().hex[:8]}"
    received = datetime(2025, 6, 20, 9, 0, tzinfo=VN_TZ)
    batch = {
        "events": [
            {
                "source": "tms-fig",
                "event_id": uuid.uuid4().hex,
                "type": "dossier.received",
                "occurred_at": received.isoformat(),
                "data": {"dossier_id": dossier, "unit_code": FORMER, "procedure_code": "T.DKT.01", "officer_id": "cb"},
            }
        ],
        "accepted_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
    }
    await run(reporting, on_dossier_events, "ingest.dossier-events.v1", batch)
    answer = await client.get(
        "/api/v1/warnings", params={"unit": "P01"}, headers=as_staff(settings, "P01", "unit_head")
    )
    assert answer.status_code == 200, answer.text
    mine = [i for i in answer.json()["items"] if i["dossier_id"] == dossier]
    assert [i["kind"] for i in mine] == ["overdue"]
