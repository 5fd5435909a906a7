"""The API through FastAPI in-process: public ranking, scope of breakdowns and dossier lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from shared.identity import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal

from .helpers import api_reading_at_once, apply_batches, load_reference, pin_clock
from .scenario import NOW, READ_AT, dossier_events

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(clean: Scoring) -> AsyncIterator[httpx.AsyncClient]:
    await load_reference(clean, NOW)
    await apply_batches(clean, [dossier_events()], NOW)
    done = await refresh_once(clean, now=NOW)
    assert {"2026-10", "2026-Q4", "2026"} <= set(done)
    transport = httpx.ASGITransport(app=pin_clock(api_reading_at_once(clean), READ_AT))
    async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as c:
        yield c


def as_staff(app: Scoring, unit: str, role: str = "unit_head") -> dict[str, str]:
    principal = Principal(kind="staff", roles=(role,), unit=unit, sub="x")
    return {PRINCIPAL_HEADER: encode_principal(principal), INTERNAL_TOKEN_HEADER: app.settings.internal_token}


async def test_public_ranking(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/scores", params={"period": "2026-10", "level": "province"})
    assert r.status_code == 200
    body = r.json()
    rows = body["rows"]
    # Both have fewer than 30 dossiers: listed with their figures (best first), not ranked.
    assert [(x["unit_code"], x["rank"], x["total"]) for x in rows] == [("P02", None, 90.0), ("P01", None, 53.21)]
    assert all(x["provisional"] and x["rank_delta"] is None for x in rows)
    assert set(rows[0]) >= {"unit_name", "grade", "rank_delta", "groups", "dossiers", "provisional"}
    assert datetime.fromisoformat(body["computed_at"]) == NOW  # dữ liệu tính đến: the refresh's instant
    assert rows[0]["groups"]["G2"] == 20.0


async def test_custom_range_computed_on_demand(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/scores", params={"period": "2026-10-01..2026-10-06", "parent": "CT"})
    assert r.status_code == 200
    assert {x["unit_code"] for x in r.json()["rows"]} == {"P01", "P02"}
    assert (await client.get("/api/v1/scores", params={"period": "2026-13"})).status_code == 422


async def test_scope_rules(clean: Scoring, client: httpx.AsyncClient) -> None:
    p01 = as_staff(clean, "P01")
    assert (await client.get("/api/v1/scores/P01", params={"period": "2026-10"})).status_code == 401
    assert (await client.get("/api/v1/scores/P02", params={"period": "2026-10"}, headers=p01)).status_code == 403
    r = await client.get("/api/v1/scores/P02/indicators/2.1/dossiers", params={"period": "2026-10"}, headers=p01)
    assert r.status_code == 403
    r = await client.get("/api/v1/scores/P01", params={"period": "2026-10"}, headers=p01)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 53.21
    ind = next(i for g in body["groups"] for i in g["indicators"] if i["id"] == "2.1")
    assert (ind["numerator"], ind["denominator"], ind["points"], ind["applicable"]) == (2, 4, 10.0, True)
    r = await client.get("/api/v1/scores/P01/indicators/2.1/dossiers", params={"period": "2026-10"}, headers=p01)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 2 and [i["dossier_id"] for i in page["items"]] == ["A2", "A4"]
    assert page["items"][0]["officer_id"] == "P01-o3" and "quá hạn" in page["items"][0]["reason"]
    ct = as_staff(clean, "CT", role="leader")
    assert (await client.get("/api/v1/scores/P02", params={"period": "2026-10"}, headers=ct)).status_code == 200


async def test_methodologies(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/methodologies")
    assert {m["id"] for m in r.json()} == {"tax-2025", "portal-766"}
    assert (await client.get("/api/v1/methodologies/portal-766")).json()["id"] == "portal-766"
    assert (await client.get("/api/v1/methodologies/nope")).status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/api/v1/scores", {"period": "9999"}, 422, "period"),
        ("/api/v1/scores", {"period": "0001-01"}, 422, "period"),
        ("/api/v1/scores", {"period": "0001-01-01..0001-01-02"}, 422, "period"),
        ("/api/v1/scores", {"period": "2024-01-01..2026-01-01"}, 422, "period"),  # > a year
        ("/api/v1/scores", {"period": "2026-10\x00"}, 422, "period"),
        ("/api/v1/scores", {"methodology": "nope"}, 404, "methodology"),
        ("/api/v1/scores", {"methodology": "tax\x01"}, 422, "methodology"),
        ("/api/v1/scores", {"parent": "P0\x001"}, 422, "parent"),
        ("/api/v1/scores/P0%001", {"period": "2026-10"}, 422, "unit_code"),
        ("/api/v1/scores/%1F", {"period": "2026-10"}, 422, "unit_code"),
        ("/api/v1/scores/" + "X" * 65, {"period": "2026-10"}, 422, "unit_code"),
        ("/api/v1/scores/NOPE", {"period": "2026-10"}, 404, "unit_code"),
        ("/api/v1/scores/P01", {"period": "9999"}, 422, "period"),
        ("/api/v1/scores/P01/indicators/2.1%00/dossiers", {"period": "2026-10"}, 422, "indicator_id"),
        ("/api/v1/scores/P01/indicators/9.9/dossiers", {"period": "2026-10"}, 404, "indicator_id"),
        ("/api/v1/scores/P0%0A1/indicators/2.1/dossiers", {"period": "2026-10"}, 422, "unit_code"),
        ("/api/v1/scores/P01/stake", {"period": "0001-01"}, 422, "period"),
        ("/api/v1/scores/P%001/stake", {}, 422, "unit_code"),
        ("/api/v1/scores/P01/stake/2.1%00/dossiers", {}, 422, "indicator_id"),
        ("/api/v1/methodologies/%00", {}, 422, "methodology"),
        ("/api/v1/methodologies/nope", {}, 404, "methodology"),
        ("/api/v1/scores/P01/indicators/2.1/dossiers", {"period": "2026-10", "page": str(10**20)}, 422, "page"),
        ("/api/v1/scores/P01/stake/2.1/dossiers", {"page": "0"}, 422, "page"),
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field(
    clean: Scoring, client: httpx.AsyncClient, path: str, params: dict[str, str], status: int, field: str
) -> None:
    r = await client.get(path, params=params, headers=as_staff(clean, "CT", role="admin"))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and field in {d["field"] for d in error["details"]}, error


async def test_breakdown_says_when_it_was_computed(clean: Scoring, client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/scores/P01", params={"period": "2026-10"}, headers=as_staff(clean, "P01"))
    assert datetime.fromisoformat(r.json()["computed_at"]) == NOW
    # A custom range is computed on demand: its figures are as of now.
    r = await client.get("/api/v1/scores", params={"period": "2026-10-01..2026-10-06"})
    assert datetime.fromisoformat(r.json()["computed_at"]) > NOW
