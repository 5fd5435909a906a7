"""An admin uploads a methodology version: validated, immutable, scored beside the others."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.scoring.adapters.tables import score
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.domain.methodology import builtin_document

from .helpers import staff_headers
from .scenario import NOW

pytestmark = pytest.mark.integration

NEW_ID = "tax-2025-bands"
BANDS = [
    {"code": "A", "label_vi": "Loại A", "label_en": "Grade A", "min_total": 85},
    {"code": "B", "label_vi": "Loại B", "label_en": "Grade B", "min_total": 50},
    {"code": "C", "label_vi": "Loại C", "label_en": "Grade C", "min_total": 0},
]


def new_version() -> dict[str, Any]:
    doc = copy.deepcopy(builtin_document("tax-2025"))
    doc["id"] = NEW_ID
    doc["name_en"] = "Tax 2025, other grade bands"
    doc["grade_bands"] = BANDS
    return doc


async def _scores(app: Scoring, methodology: str) -> dict[tuple[str, str], tuple[Any, str]]:
    async with app.sessions() as session:
        rows = await session.execute(
            select(score.c.period, score.c.unit_code, score.c.total, score.c.grade).where(
                score.c.methodology == methodology
            )
        )
        return {(r.period, r.unit_code): (r.total, r.grade) for r in rows}


async def test_upload_scores_beside_the_old_version(clean: Scoring, client: httpx.AsyncClient) -> None:
    before = await _scores(clean, "tax-2025")
    r = await client.post("/api/v1/methodologies", json=new_version(), headers=staff_headers(clean))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["id"], body["created_by"], body["max_total"]) == (NEW_ID, "a", 100.0)

    listed = await client.get("/api/v1/methodologies")
    assert {m["id"] for m in listed.json()} == {"tax-2025", "portal-766", NEW_ID}
    got = await client.get(f"/api/v1/methodologies/{NEW_ID}")
    assert got.status_code == 200 and got.json()["grade_bands"] == BANDS

    assert "2026-10" in await refresh_once(clean, now=NOW)
    after_old = await _scores(clean, "tax-2025")
    assert {k: v[0] for k, v in after_old.items()} == {k: v[0] for k, v in before.items()}
    new = await _scores(clean, NEW_ID)
    assert set(new) == set(before)
    for key, (total, grade) in new.items():
        assert total == before[key][0]
        assert grade == ("A" if total >= 85 else "B" if total >= 50 else "C")
    assert new[("2026-10", "P02")] == (before[("2026-10", "P02")][0], "A")
    assert new[("2026-10", "P01")][1] == "B"

    r = await client.get("/api/v1/scores", params={"period": "2026-10", "level": "province", "methodology": NEW_ID})
    assert r.status_code == 200
    assert [(x["unit_code"], x["grade"]) for x in r.json()["rows"]] == [("P02", "A"), ("P01", "B")]


async def test_invalid_duplicate_and_forbidden(clean: Scoring, client: httpx.AsyncClient) -> None:
    bad = new_version()
    bad["grade_bands"] = [{"code": "X", "label_vi": "X", "label_en": "X", "min_total": 10}]
    bad["groups"][0]["max_points"] = 1
    r = await client.post("/api/v1/methodologies", json=bad, headers=staff_headers(clean))
    assert r.status_code == 422
    details = r.json()["error"]["details"]
    assert len(details) >= 3 and all(set(d) == {"field", "reason"} for d in details)
    fields = {d["field"] for d in details}
    assert "grade_bands" in fields and "groups" in fields

    r = await client.post("/api/v1/methodologies", json=[1, 2], headers=staff_headers(clean))
    assert r.status_code == 422

    dup = new_version()
    dup["id"] = "tax-2025"
    assert (await client.post("/api/v1/methodologies", json=dup, headers=staff_headers(clean))).status_code == 409
    assert (
        await client.post("/api/v1/methodologies", json=new_version(), headers=staff_headers(clean))
    ).status_code == 201
    assert (
        await client.post("/api/v1/methodologies", json=new_version(), headers=staff_headers(clean))
    ).status_code == 409

    other = new_version()
    other["id"] = "tax-2025-staff"
    r = await client.post("/api/v1/methodologies", json=other, headers=staff_headers(clean, role="leader"))
    assert r.status_code == 403
    assert (await client.post("/api/v1/methodologies", json=other)).status_code == 401
