"""The read routes' period input: one value per parameter, periods scoring keeps, ASCII labels."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from services.scoring.domain.period_labels import HISTORY_MONTHS, history_floor
from shared.calendar import local_date

from .helpers import compute, staff_headers
from .scenario import READ_AT  # the client's clock (conftest): the periods that can be asked count from it

pytestmark = pytest.mark.integration

BREAKDOWN = "/api/v1/scores/P01"
SHORTFALL = "/api/v1/scores/P01/indicators/2.1/dossiers"
STAKE = "/api/v1/scores/P01/stake"
READS = ("/api/v1/scores", BREAKDOWN, SHORTFALL, STAKE)


def _detail(r: httpx.Response) -> dict[str, str]:
    details = r.json()["error"]["details"]
    assert len(details) == 1, details
    return details[0]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/v1/scores", "period=2026-10&period=2026-09", "period"),
        ("/api/v1/scores", "period=2026-10&level=province&level=local", "level"),
        ("/api/v1/scores", "methodology=tax-2025&methodology=portal-766", "methodology"),
        ("/api/v1/scores", "mapping=today&mapping=as_of_period", "mapping"),
        ("/api/v1/scores", "parent=CT&parent=P01", "parent"),
        (BREAKDOWN, "period=2026-10&period=2026-10", "period"),  # even the same value twice
        (BREAKDOWN, "mapping=today&mapping=today", "mapping"),
        (SHORTFALL, "period=2026-10&page=1&page=2", "page"),
        (STAKE, "within_wd=1&within_wd=2", "within_wd"),
        ("/api/v1/calendar", "year=2026&year=2027", "year"),
    ],
)
async def test_a_single_valued_parameter_given_twice_is_refused(
    client: httpx.AsyncClient, clean: object, path: str, query: str, field: str
) -> None:
    r = await client.get(f"{path}?{query}", headers=staff_headers(clean))  # type: ignore[arg-type]
    assert r.status_code == 422, r.text
    detail = _detail(r)
    assert detail["field"] == field
    assert "một lần" in detail["reason"] and "once" in detail["reason"]


def _month(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


async def test_periods_outside_the_kept_history_are_refused(client: httpx.AsyncClient, clean: object) -> None:
    floor, today = local_date(history_floor(READ_AT)), local_date(READ_AT)
    running = today.year * 12 + today.month - 1
    before = _month(running - HISTORY_MONTHS - 1)
    refused = [
        before,
        _month(running + 1),
        str(today.year + 1),
        f"{floor.year - 1}-Q4",
        "2020",
        f"{floor.year - 1}-01-01..{floor.year - 1}-01-05",
    ]
    headers = staff_headers(clean)  # type: ignore[arg-type]
    for path in READS:
        for label in refused:
            r = await client.get(path, params={"period": label}, headers=headers)
            assert r.status_code == 422, (path, label, r.text)
            detail = _detail(r)
            assert detail["field"] == "period"
            assert _month(running - HISTORY_MONTHS) in detail["reason"], detail  # the range that can be asked
            assert _month(running) in detail["reason"], detail


async def test_the_running_period_and_the_floor_month_are_read(client: httpx.AsyncClient, clean: object) -> None:
    today = local_date(READ_AT)
    running = today.year * 12 + today.month - 1
    headers = staff_headers(clean)  # type: ignore[arg-type]
    for label in (None, _month(running), _month(running - 1), _month(running - HISTORY_MONTHS), str(today.year)):
        for path in ("/api/v1/scores",) if label == _month(running - HISTORY_MONTHS) else ("/api/v1/scores", BREAKDOWN):
            params = {} if label is None else {"period": label}
            r = await client.get(path, params=params, headers=headers)
            assert r.status_code == 200, (path, label, r.text)
    r = await client.get("/api/v1/scores", params={"period": f"{today.isoformat()}..{today.isoformat()}"})
    assert r.status_code == 200, r.text


async def test_a_period_computed_while_kept_is_read_whatever_its_age(client: httpx.AsyncClient, clean: object) -> None:
    """Its stored figures are served after the history floor passed it (they were computed from
    data); a month never computed that far back is still refused."""
    today = local_date(READ_AT)
    running = today.year * 12 + today.month - 1
    old, never = _month(running - HISTORY_MONTHS - 2), _month(running - HISTORY_MONTHS - 3)
    year, month = (int(x) for x in old.split("-"))
    then = datetime(year + (month == 12), month % 12 + 1, 2, tzinfo=UTC)  # the next month, the old one in the window
    await compute(clean, old, then)  # type: ignore[arg-type]
    headers = staff_headers(clean)  # type: ignore[arg-type]
    for path in READS:
        r = await client.get(path, params={"period": old}, headers=headers)
        assert r.status_code == 200, (path, r.text)
        assert (await client.get(path, params={"period": never}, headers=headers)).status_code == 422, path


@pytest.mark.parametrize("label", ["٢٠٢٦-١٠", "２０２６-10", "2026-Q٣", "٢٠٢٦", "2026-10-01..2026-10-٠٥"])
async def test_non_ascii_digits_are_refused(client: httpx.AsyncClient, label: str) -> None:
    r = await client.get("/api/v1/scores", params={"period": label})
    assert r.status_code == 422, r.text
    assert _detail(r)["field"] == "period"
