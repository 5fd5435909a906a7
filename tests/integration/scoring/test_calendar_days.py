"""Admin-declared days off and make-up working days: the calendar, re-judging, recompute."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import delete, select

from services.scoring.adapters.tables import outbox
from services.scoring.application.recompute import recompute_and_compare
from services.scoring.application.refresher import make_refresher, refresh_once
from services.scoring.bootstrap import Scoring
from shared.contracts.scoring import CalendarChanged

from .helpers import staff_headers
from .scenario import NOW, PROCEDURE, dossier_events

pytestmark = pytest.mark.integration


async def _ind_21(client: httpx.AsyncClient, app: Scoring) -> tuple[Any, ...]:
    r = await client.get("/api/v1/scores/P01", params={"period": "2026-10"}, headers=staff_headers(app, "leader"))
    assert r.status_code == 200
    ind = next(i for g in r.json()["groups"] for i in g["indicators"] if i["id"] == "2.1")
    return ind["numerator"], ind["denominator"], ind["points"]


async def _same_as_recompute(app: Scoring) -> None:
    async with app.sessions() as s:
        diffs = await recompute_and_compare(
            s,
            events=[PROCEDURE, *dossier_events()],
            periods=["2026-10"],
            methodologies=list(app.methodologies.values()),
            calendar=app.calendar,
        )
    assert diffs == []


async def test_days_off_move_a_due_date_across_completion(clean: Scoring, client: httpx.AsyncClient) -> None:
    before = await _ind_21(client, clean)
    assert before == (2, 4, 10.0)
    # A2: received Mon 5 Oct, 5 working days → due Mon 12 Oct, completed Wed 14 Oct (late).
    # Three declared days off (12–14 Oct) move its due date to Thu 15 Oct: on time.
    for day in ("2026-10-12", "2026-10-13", "2026-10-14"):
        r = await client.put(
            f"/api/v1/calendar/days/{day}", json={"kind": "day_off", "note": "bão"}, headers=staff_headers(clean)
        )
        assert r.status_code == 201, r.text
    r = await client.put(
        "/api/v1/calendar/days/2026-10-14", json={"kind": "day_off", "note": "bão số 9"}, headers=staff_headers(clean)
    )
    assert r.status_code == 200 and r.json()["note"] == "bão số 9"

    cal = (await client.get("/api/v1/calendar", params={"year": 2026})).json()
    assert [d["day"] for d in cal["declared"]] == ["2026-10-12", "2026-10-13", "2026-10-14"]
    off = {d["day"]: d["source"] for d in cal["days_off"]}
    assert off["2026-10-12"] == "declared" and off["2026-09-02"] == "holiday"  # Quốc khánh

    assert "2026-10" in await refresh_once(clean, now=NOW)
    after = await _ind_21(client, clean)
    assert after != before and after[0] == before[0] + 1
    await _same_as_recompute(clean)

    # Withdrawing them restores the scores; so does the recompute.
    for day in ("2026-10-12", "2026-10-13", "2026-10-14"):
        assert (await client.delete(f"/api/v1/calendar/days/{day}", headers=staff_headers(clean))).status_code == 204
    assert (await client.delete("/api/v1/calendar/days/2026-10-14", headers=staff_headers(clean))).status_code == 404
    assert "2026-10" in await refresh_once(clean, now=NOW)
    assert await _ind_21(client, clean) == before
    await _same_as_recompute(clean)


async def test_makeup_working_day_makes_a_dossier_late(clean: Scoring, client: httpx.AsyncClient) -> None:
    before = await _ind_21(client, clean)
    for day in ("2026-10-12", "2026-10-13", "2026-10-14"):
        r = await client.put(f"/api/v1/calendar/days/{day}", json={"kind": "day_off"}, headers=staff_headers(clean))
        assert r.status_code == 201
    assert "2026-10" in await refresh_once(clean, now=NOW)
    on_time = await _ind_21(client, clean)
    assert on_time[0] == before[0] + 1
    # A make-up Saturday 10 Oct: A2 is due on it (6, 7, 8, 9, 10 Oct), before its completion.
    r = await client.put("/api/v1/calendar/days/2026-10-10", json={"kind": "working_day"}, headers=staff_headers(clean))
    assert r.status_code == 201
    cal = (await client.get("/api/v1/calendar", params={"year": 2026})).json()
    assert {"day": "2026-10-10", "source": "declared", "name": None} in cal["working_weekend_days"]
    assert "2026-10" in await refresh_once(clean, now=NOW)
    assert await _ind_21(client, clean) == before
    await _same_as_recompute(clean)


async def test_worker_process_picks_up_a_declaration(clean: Scoring, client: httpx.AsyncClient) -> None:
    """The worker is another process with its own calendar: it rebuilds it from the table."""
    worker = Scoring(settings=clean.settings, engine=clean.engine, sessions=clean.sessions)
    await refresh_once(worker, now=NOW)
    before = await _ind_21(client, clean)
    for day in ("2026-10-12", "2026-10-13", "2026-10-14"):
        r = await client.put(f"/api/v1/calendar/days/{day}", json={"kind": "day_off"}, headers=staff_headers(clean))
        assert r.status_code == 201
    assert "2026-10" in await refresh_once(worker, now=NOW)
    assert worker.calendar_days == {
        (d, "day_off") for d in (date(2026, 10, 12), date(2026, 10, 13), date(2026, 10, 14))
    }
    assert (await _ind_21(client, clean))[0] == before[0] + 1
    await _same_as_recompute(worker)


async def test_calendar_validation_and_roles(clean: Scoring, client: httpx.AsyncClient) -> None:
    ok = {"kind": "day_off"}
    assert (await client.put("/api/v1/calendar/days/2026-10-12", json=ok)).status_code == 401
    r = await client.put("/api/v1/calendar/days/2026-10-12", json=ok, headers=staff_headers(clean, "leader"))
    assert r.status_code == 403
    r = await client.put("/api/v1/calendar/days/2026-10-12", json={"kind": "nap"}, headers=staff_headers(clean))
    assert r.status_code == 422
    r = await client.put("/api/v1/calendar/days/2026-13-12", json=ok, headers=staff_headers(clean))
    assert r.status_code == 422
    assert (await client.get("/api/v1/calendar")).status_code == 422


async def test_the_worker_announces_the_declared_days_at_start(clean: Scoring, client: httpx.AsyncClient) -> None:
    """A reporting queue created after the last declaration learns the set when scoring starts."""
    r = await client.put("/api/v1/calendar/days/2026-10-14", json={"kind": "day_off"}, headers=staff_headers(clean))
    assert r.status_code == 201
    async with clean.uow() as uow:  # the declaration's own announcement has gone out long ago
        await uow.session.execute(delete(outbox))

    async def announced() -> list[dict[str, Any]]:
        async with clean.sessions() as s:
            rows = await s.execute(select(outbox.c.body).where(outbox.c.routing_key == CalendarChanged.routing_key))
            return [orjson.loads(b) for b in rows.scalars()]

    stop = asyncio.Event()
    worker = asyncio.create_task(make_refresher(clean)(stop))
    try:
        deadline = time.monotonic() + 30
        while not (bodies := await announced()):
            assert time.monotonic() < deadline, "no CalendarChanged from the starting worker"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    assert [b["days"] for b in bodies] == [[{"day": "2026-10-14", "kind": "day_off"}]]  # once per start
