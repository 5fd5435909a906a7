"""The 2025 merger both ways (sáp nhập đơn vị): as of the period, and mapped onto today's units.

Units: CT; P01 (unchanged); OLD_A and OLD_B, two provincial departments valid to 2025-06-30 whose
successor is P12 (valid from 2025-07-01); OLD_C, absorbed into OLD_A on 2025-04-01 (a chain
OLD_C → OLD_A → P12). Dossiers of May 2025 (one procedure, 5 working days):
  OLD_A: A1 on time, A2 late;  OLD_B: B1 on time;  OLD_C: C1 on time (its system still reports
  the old code);  P01: Q1 on time.
As of May 2025: OLD_C is not valid, so C1 counts for its successor OLD_A → OLD_A 2/3 on time,
OLD_B 1/1, P01 1/1; P12 did not exist. Mapped onto today: P12 = OLD_A ∪ OLD_B ∪ OLD_C = 3/4.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import httpx
import pytest

from services.scoring.application.scoring_service import rows_for
from services.scoring.application.unit_history import (
    TODAY,
    evaluate_mapped,
    is_identity,
    mapped_rows,
    successor_target,
    units_mapped_to_today,
)
from services.scoring.bootstrap import Scoring
from services.scoring.domain import parse_period
from services.scoring.domain.engine import UnitRow
from services.scoring.handlers.messages import apply_procedure_events, apply_units
from shared.calendar import VN_TZ
from shared.contracts import RawEvent, UnitRecord, UnitsChanged

from .helpers import api_reading_at_once, apply_batches, compute, pin_clock
from .scenario import PROCEDURE
from .test_api import as_staff

pytestmark = pytest.mark.integration

NOW = datetime(2025, 6, 10, 9, 0, tzinfo=VN_TZ)  # when the May events were applied and scored
# "Today" when read: after the merger, with October 2026 closed and both months within the history
# kept (the real clock would put them behind the floor one day).
TODAY_AT = datetime(2026, 11, 27, 9, 0, tzinfo=VN_TZ)
MAY = "2025-05"
UNITS = UnitsChanged(
    units=[
        UnitRecord(code="CT", name="Cục Thuế", level="central", parent_code=None),
        UnitRecord(code="P01", name="Thuế Thành phố Hà Nội", level="province", parent_code="CT"),
        UnitRecord(
            code="P12", name="Thuế tỉnh Tuyên Quang", level="province", parent_code="CT", valid_from="2025-07-01"
        ),
        UnitRecord(
            code="OLD_A",
            name="Cục Thuế tỉnh Tuyên Quang",
            level="province",
            parent_code="CT",
            valid_to="2025-06-30",
            successor_code="P12",
        ),
        UnitRecord(
            code="OLD_B",
            name="Cục Thuế tỉnh Hà Giang",
            level="province",
            parent_code="CT",
            valid_to="2025-06-30",
            successor_code="P12",
        ),
        UnitRecord(
            code="OLD_C",
            name="Chi cục Thuế cũ",
            level="province",
            parent_code="CT",
            valid_to="2025-03-31",
            successor_code="OLD_A",
        ),
    ]
)


def _dossier(d: str, unit: str, day: int, done_day: int) -> list[RawEvent]:
    def ev(kind: str, at_day: int, **data: Any) -> RawEvent:
        return RawEvent(
            source="tms",
            event_id=f"{d}-{kind}",
            type=f"dossier.{kind}",
            occurred_at=datetime(2025, 5, at_day, 9, tzinfo=VN_TZ).isoformat(),
            data={"dossier_id": d, **data},
        )

    return [
        ev("received", day, unit_code=unit, procedure_code="TAX1", channel="counter", officer_id=f"{d}-o"),
        ev("completed", done_day, outcome="approved", result_digitized=True),
        ev("synced", done_day),
    ]


# Received Mon 5 May 2025 (5 working days → due end of Mon 12 May); A2 completed Wed 14 May: late.
EVENTS = [
    *_dossier("M-A1", "OLD_A", 5, 7),
    *_dossier("M-A2", "OLD_A", 5, 14),
    *_dossier("M-B1", "OLD_B", 5, 6),
    *_dossier("M-C1", "OLD_C", 5, 8),
    *_dossier("M-Q1", "P01", 5, 9),
]


def test_successor_chain_and_rewrite() -> None:
    units = [
        UnitRow("CT", "CT", "central", None),
        UnitRow("A", "A", "province", "CT", valid_to=date(2025, 6, 30), successor_code="B"),
        UnitRow("B", "B", "province", "CT", valid_to=date(2025, 9, 30), successor_code="C"),
        UnitRow("C", "C", "province", "CT", valid_from=date(2025, 10, 1)),
        UnitRow("X", "X", "province", "CT", valid_to=date(2025, 6, 30)),  # dissolved, no successor
        UnitRow("Y", "Y", "province", "CT", valid_to=date(2024, 12, 31)),  # gone before the period
    ]
    every = {u.code: u for u in units}
    today = TODAY_AT.date()
    assert successor_target("A", every, today) == "C"
    assert successor_target("C", every, today) == "C"
    assert successor_target("X", every, today) is None
    may = parse_period(MAY)
    mapped = {u.code: u.valid_in(may) for u in units_mapped_to_today(units, may, today)}
    assert mapped == {"CT": True, "A": False, "B": False, "C": True, "X": True, "Y": False}
    assert not is_identity(units, may, today)
    assert is_identity(units, parse_period("2026-10"), today)


@pytest.fixture
async def client(clean: Scoring) -> AsyncIterator[httpx.AsyncClient]:
    async with clean.uow() as uow:
        await apply_units(UNITS, uow, now=NOW)
        await apply_procedure_events([PROCEDURE], uow, now=NOW)
    await apply_batches(clean, [EVENTS], NOW)
    await compute(clean, MAY, NOW)
    transport = httpx.ASGITransport(app=pin_clock(api_reading_at_once(clean), TODAY_AT))
    async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as c:
        yield c


def _on_time(body: dict[str, Any]) -> tuple[int, int, float]:
    ind = next(i for g in body["groups"] for i in g["indicators"] if i["id"] == "2.1")
    return ind["numerator"], ind["denominator"], ind["points"]


async def test_as_of_period_and_mapped_to_today(clean: Scoring, client: httpx.AsyncClient) -> None:
    q = {"period": MAY, "level": "province"}
    as_of = (await client.get("/api/v1/scores", params=q)).json()
    assert as_of["mapping"] == "as_of_period"
    rows = {r["unit_code"]: r for r in as_of["rows"]}
    assert set(rows) == {"P01", "OLD_A", "OLD_B"}  # OLD_C merged into OLD_A before May; P12 not yet
    assert {c: rows[c]["dossiers"] for c in rows} == {"P01": 1, "OLD_A": 3, "OLD_B": 1}
    # 2.1: OLD_A 2/3 → 20 × 66.666… / 100 = 13.33; OLD_B and P01 1/1 → 20
    assert rows["OLD_A"]["groups"]["G2"] == 13.33 and rows["OLD_B"]["groups"]["G2"] == 20.0
    assert rows["OLD_A"]["rank"] is None and rows["OLD_A"]["provisional"]  # 3 dossiers: not ranked

    today = (await client.get("/api/v1/scores", params={**q, "mapping": "today"})).json()
    assert today["mapping"] == "today"
    trows = {r["unit_code"]: r for r in today["rows"]}
    assert set(trows) == {"P01", "P12"}
    # P12 = OLD_A ∪ OLD_B ∪ OLD_C: 3 of 4 on time → 20 × 75 / 100 = 15.00
    assert trows["P12"]["dossiers"] == 4 and trows["P12"]["groups"]["G2"] == 15.0
    assert (trows["P01"]["rank"], trows["P12"]["rank"]) == (None, None)  # provisional
    assert [r["unit_code"] for r in today["rows"]] == ["P01", "P12"]  # best total first
    assert trows["P01"]["total"] == rows["P01"]["total"]  # unchanged units score the same

    ct = as_staff(clean, "CT", role="leader")
    b = (await client.get("/api/v1/scores/P12", params={"period": MAY, "mapping": "today"}, headers=ct)).json()
    assert b["mapping"] == "today" and _on_time(b) == (3, 4, 15.0)
    old = (await client.get("/api/v1/scores/OLD_A", params={"period": MAY}, headers=ct)).json()
    assert _on_time(old) == (2, 3, 13.33)
    gone = await client.get("/api/v1/scores/OLD_A", params={"period": MAY, "mapping": "today"}, headers=ct)
    assert gone.status_code == 404
    missing = await client.get("/api/v1/scores/P12", params={"period": MAY}, headers=ct)
    assert missing.status_code == 404  # P12 did not exist in May 2025

    central = (await client.get("/api/v1/scores/CT", params={"period": MAY, "mapping": "today"}, headers=ct)).json()
    assert _on_time(central) == (4, 5, 16.0)  # the whole tree is the same union either way
    assert (await client.get("/api/v1/scores", params={**q, "mapping": "yesterday"})).status_code == 422


async def test_mapping_today_is_the_stored_ranking_when_nothing_changed(client: httpx.AsyncClient) -> None:
    # October 2026 is after the merger: both mappings give the same rows
    a = (await client.get("/api/v1/scores", params={"period": "2026-10"})).json()["rows"]
    b = (await client.get("/api/v1/scores", params={"period": "2026-10", "mapping": "today"})).json()["rows"]
    assert a == b


async def test_mapped_counters_equal_judging_every_dossier(clean: Scoring, client: httpx.AsyncClient) -> None:
    """mapping=today from the stored counters equals evaluating every dossier onto today's units."""
    period, now = parse_period(MAY), TODAY_AT
    async with clean.sessions() as s:
        for m in clean.methodologies.values():
            fast = await mapped_rows(s, period=period, methodology=m, calendar=clean.calendar, now=now)
            ev = await evaluate_mapped(s, period=period, now=now, calendar=clean.calendar, mapping=TODAY)
            judged = [r.as_read_row() for r in await rows_for(s, ev=ev, methodology=m)]
            assert fast is not None and fast == judged
