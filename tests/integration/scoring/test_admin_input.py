"""The scoring API's admin input (methodology uploads, calendar days): bad input is a 422 naming
the field, never a 500, and never a stored document that later breaks every reader."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from services.scoring.application.refresher import refresh_once
from services.scoring.application.table_copy import Reloads
from services.scoring.bootstrap import Scoring
from services.scoring.domain.methodology import builtin_document

from .helpers import staff_headers
from .scenario import NOW

pytestmark = pytest.mark.integration


def version(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(builtin_document("tax-2025"))
    doc["id"] = "review-input"
    doc.update(changes)
    return doc


def _without(path: str) -> dict[str, Any]:
    doc = version()
    del doc["groups"][0][path]
    return doc


async def _upload(client: httpx.AsyncClient, app: Scoring, doc: dict[str, Any]) -> httpx.Response:
    # Raw JSON: NaN is what Python's json (and so Starlette's request.json) accepts.
    body = json.dumps(doc).encode()
    return await client.post(
        "/api/v1/methodologies", content=body, headers={**staff_headers(app), "content-type": "application/json"}
    )


def _fields(r: httpx.Response) -> str:
    return " ".join(d["field"] for d in r.json()["error"]["details"])


# Documents validate_methodology passes but methodology_from_dict cannot build: they are stored,
# the upload answers 500, and every later load of the table raises.
UNLOADABLE = {
    "effective_from_as_number": (version(effective_from=20260101), "effective_from"),
    "group_without_name_vi": (_without("name_vi"), "groups[0].name_vi"),
    "group_without_id": (_without("id"), "groups"),
}


@pytest.mark.parametrize("name", list(UNLOADABLE))
async def test_unloadable_methodology_is_a_422(clean: Scoring, client: httpx.AsyncClient, name: str) -> None:
    doc, field = UNLOADABLE[name]
    r = await _upload(client, clean, doc)
    assert r.status_code == 422, r.text
    assert field in _fields(r)


async def test_refused_methodology_never_breaks_a_restarted_api(clean: Scoring, client: httpx.AsyncClient) -> None:
    await _upload(client, clean, UNLOADABLE["group_without_name_vi"][0])
    clean.synced = Reloads("methodologies and calendar")  # a new API process loads the table afresh
    r = await client.get("/api/v1/scores", params={"period": "2026-10"})
    assert r.status_code == 200, r.text
    await refresh_once(clean, now=NOW)  # the refresher loads the same table


def _bad(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = version()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


# Values of the wrong JSON type, NUL, or beyond what a reader accepts: a 422 naming the field.
WRONG_VALUES = {
    "group_id_list": (_bad(("groups", 0, "id"), [1]), "500 TypeError unhashable"),
    "band_code_list": (_bad(("grade_bands", 0, "code"), [1]), "500 TypeError unhashable"),
    "band_min_total_nan": (_bad(("grade_bands", 1, "min_total"), float("nan")), "500 InvalidOperation"),
    "id_with_nul": (version(id="a\x00b"), "500 from PostgreSQL"),
    "name_vi_with_nul": (version(name_vi="a\x00b"), "500 from PostgreSQL"),
    "version_beyond_64_bits": (version(version=10**30), "201, then every read of it 500"),
    "id_longer_than_readable": (version(id="y" * 200), "201, then GET /methodologies/{id} 422"),
    "id_with_slash": (version(id="a/b"), "201, unreadable at /methodologies/{id}"),
    "name_vi_number": (version(name_vi=123), "201"),
    "indicator_id_object": (_bad(("groups", 0, "indicators", 0, "id"), {"a": 1}), "201"),
    "band_label_null": (_bad(("grade_bands", 0, "label_vi"), None), "201"),
}


@pytest.mark.parametrize("name", list(WRONG_VALUES))
async def test_methodology_wrong_values_are_a_422(clean: Scoring, client: httpx.AsyncClient, name: str) -> None:
    doc, today = WRONG_VALUES[name]
    r = await _upload(client, clean, doc)
    assert r.status_code == 422, f"today: {today}; got {r.status_code} {r.text[:200]}"
    assert r.json()["error"]["details"], r.text


async def test_calendar_note_with_nul_is_a_422(clean: Scoring, client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/api/v1/calendar/days/2026-10-20", json={"kind": "day_off", "note": "a\x00b"}, headers=staff_headers(clean)
    )
    assert r.status_code == 422, r.text
    assert _fields(r) == "note"


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31"])
async def test_calendar_day_outside_the_calendar_years_is_a_422(
    clean: Scoring, client: httpx.AsyncClient, day: str
) -> None:
    # GET /calendar?year= takes 2000..2100 and periods the same years: a day outside can be
    # declared (201, and every dossier flagged for re-judging) but never shown.
    r = await client.put(f"/api/v1/calendar/days/{day}", json={"kind": "day_off"}, headers=staff_headers(clean))
    assert r.status_code == 422, r.text
    assert _fields(r) == "day"
