"""GET /api/v1/scores/{unit}/stake through the real handlers, read model and FastAPI in-process.

The scenario is the unit test's hand-worked running November 2026 (tests/unit/scoring/
test_stake.py), sent as raw events; "now" is pinned to Fri 13 Nov 2026 10:00 (Vietnam).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.scoring.api.routes import get_now
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import apply_procedure_events, apply_units
from shared.contracts import RawEvent, UnitRecord, UnitsChanged
from tests.unit.scoring.test_stake import NOW, events

from .helpers import api_reading_at_once, apply_batches, compute
from .test_api import as_staff

pytestmark = pytest.mark.integration

UNITS = UnitsChanged(
    units=[
        UnitRecord(code="CT", name="Cục Thuế", level="central", parent_code=None),
        UnitRecord(code="P1", name="Thuế tỉnh thử", level="province", parent_code="CT"),
        UnitRecord(code="L1", name="Thuế cơ sở 1", level="local", parent_code="P1"),
        UnitRecord(code="P2", name="Thuế tỉnh khác", level="province", parent_code="CT"),
    ]
)
TAX = RawEvent(
    source="catalogue",
    event_id="tax-1",
    type="procedure.upserted",
    occurred_at="2026-01-01T00:00:00+07:00",
    data={
        "procedure_code": "TAX",
        "name": "Thủ tục thử",
        "levels": ["local"],
        "time_limit_wd": 5,
        "online_level_offered": "full",
        "has_fee": True,
        "returns_document": False,
        "target": "both",
        "complete_listing": True,
    },
)


def raw_events() -> list[RawEvent]:
    return [
        RawEvent(
            source=e.source, event_id=e.event_id, type=e.type, occurred_at=e.occurred_at.isoformat(), data=dict(e.data)
        )
        for evs in events().values()
        for e in evs
    ]


@pytest.fixture
async def client(clean: Scoring) -> AsyncIterator[httpx.AsyncClient]:
    async with clean.uow() as uow:
        await apply_units(UNITS, uow, now=NOW)
        await apply_procedure_events([TAX], uow, now=NOW)
    await apply_batches(clean, [raw_events()], NOW)
    await compute(clean, "2026-11", NOW)
    app = api_reading_at_once(clean)
    app.dependency_overrides[get_now] = lambda: NOW
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring") as c:
        yield c


async def test_stake_ranked_with_exact_points_and_links(clean: Scoring, client: httpx.AsyncClient) -> None:
    p1 = as_staff(clean, "P1")
    r = await client.get("/api/v1/scores/L1/stake", params={"period": "2026-11"}, headers=p1)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["running"] is True and body["within_wd"] == 5
    breakdown = (await client.get("/api/v1/scores/L1", params={"period": "2026-11"}, headers=p1)).json()
    assert body["total"] == breakdown["total"]
    # the hand-worked figures of tests/unit/scoring/test_stake.py
    assert [(i["indicator_id"], i["points"], i["dossiers"]) for i in body["items"]] == [
        ("2.1", 11.42, 3),
        ("1.4", 4.04, 3),
        ("3.1", 3.43, 4),
        ("3.2", 3.43, 4),
        ("4.6", 2.57, 3),
    ]
    first = body["items"][0]
    assert first["name_vi"] == "Hồ sơ giải quyết trước hạn, đúng hạn"
    assert first["name_en"] == "dossiers handled early or on time"
    assert first["action_vi"].startswith("Hoàn thành 3 hồ sơ")
    assert [(e["indicator_id"], e["points_without"], e["points_with"]) for e in first["effects"]] == [
        ("2.1", 8.57, 17.14),
        ("5.4", 2.86, 5.71),
    ]
    assert (
        first["dossiers_path"] == "/api/v1/scores/L1/stake/2.1/dossiers?period=2026-11&methodology=tax-2025&within_wd=5"
    )
    assert first["shortfall_path"] == "/api/v1/scores/L1/indicators/2.1/dossiers?period=2026-11&methodology=tax-2025"

    listed = await client.get(first["dossiers_path"], headers=p1)
    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == 3 and [i["dossier_id"] for i in page["items"]] == ["B1", "B2", "B3"]
    assert page["items"][0]["officer_id"] == "O1"

    # the province sees the same dossiers (its subtree); wider horizon takes C1 too
    wide = (
        await client.get("/api/v1/scores/P1/stake", params={"period": "2026-11", "within_wd": 10}, headers=p1)
    ).json()
    assert wide["items"][0]["indicator_id"] == "2.1" and wide["items"][0]["dossiers"] == 4


async def test_stake_portal_ids(clean: Scoring, client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/scores/L1/stake",
        params={"period": "2026-11", "methodology": "portal-766"},
        headers=as_staff(clean, "CT", role="leader"),
    )
    assert r.status_code == 200
    got = {i["indicator_id"]: i["points"] for i in r.json()["items"]}
    assert got["DOSSIER_ON_TIME"] == 11.42 and got["SO_HOA_GIAY_TO_GIAI_QUYET"] == 2.29
    path = next(i for i in r.json()["items"] if i["indicator_id"] == "DOSSIER_SYNC")["dossiers_path"]
    listed = (await client.get(path, headers=as_staff(clean, "CT", role="leader"))).json()
    assert [i["dossier_id"] for i in listed["items"]] == ["A3", "B1", "B3"]


async def test_stake_scope_and_closed_period(clean: Scoring, client: httpx.AsyncClient) -> None:
    p2 = as_staff(clean, "P2")
    assert (await client.get("/api/v1/scores/L1/stake", params={"period": "2026-11"})).status_code == 401
    assert (await client.get("/api/v1/scores/L1/stake", params={"period": "2026-11"}, headers=p2)).status_code == 403
    r = await client.get("/api/v1/scores/L1/stake/2.1/dossiers", params={"period": "2026-11"}, headers=p2)
    assert r.status_code == 403
    assert (await client.get("/api/v1/scores/NOPE/stake", headers=p2)).status_code == 404
    p1 = as_staff(clean, "P1")
    closed = (await client.get("/api/v1/scores/L1/stake", params={"period": "2026-10"}, headers=p1)).json()
    assert closed["running"] is False and closed["items"] == []
    bad = await client.get("/api/v1/scores/L1/stake", params={"within_wd": -1}, headers=p1)
    assert bad.status_code == 422
