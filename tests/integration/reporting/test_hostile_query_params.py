"""Hostile query values on reporting's endpoints must answer a 4xx naming the field,
never a 500 (a real server turns an exception into a bare 500; here the transport returns it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_units_changed
from services.reporting.settings import ReportingSettings
from tests.integration.reporting.conftest import as_staff, message
from tests.integration.reporting.test_read_model import apply

pytestmark = pytest.mark.integration


@pytest.fixture
async def raw_client(reporting_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=reporting_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as c:
        yield c


def _is_clear_4xx(answer: httpx.Response, field: str) -> None:
    assert 400 <= answer.status_code < 500, f"{answer.status_code}: {answer.text[:200]}"
    fields = [d.get("field") for d in answer.json()["error"]["details"]]
    assert field in fields, answer.text


@pytest.mark.parametrize("path", ["/api/v1/reports/ranking.csv", "/api/v1/reports/ranking.xlsx"])
async def test_export_with_a_vietnamese_methodology_is_a_4xx(
    raw_client: httpx.AsyncClient, settings: ReportingSettings, path: str
) -> None:
    # The methodology goes unchecked into Content-Disposition, which Starlette encodes as latin-1.
    answer = await raw_client.get(
        path, params={"period": "2026-10", "methodology": "thuế-2025"}, headers=as_staff(settings, "CT")
    )
    _is_clear_4xx(answer, "methodology")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reports/ranking",
        "/api/v1/reports/ranking.csv",
        "/api/v1/reports/briefing.pdf",
        "/dashboard",
        "/dashboard/units/P01",
    ],
)
async def test_nul_in_methodology_is_a_4xx(
    raw_client: httpx.AsyncClient, settings: ReportingSettings, path: str
) -> None:
    # PostgreSQL refuses a NUL in text: the driver's error surfaces as a 500.
    answer = await raw_client.get(
        path, params={"period": "2026-10", "methodology": "tax\x002025"}, headers=as_staff(settings, "CT")
    )
    assert answer.status_code < 500, f"{answer.status_code}: {answer.text[:200]}"


@pytest.mark.parametrize("path", ["/", "/ranking/P01"])
async def test_public_page_with_year_zero_period_is_not_a_500(raw_client: httpx.AsyncClient, path: str) -> None:
    # periods.kind_of accepts "0000-01"; periods.display(…, "en") calls date(0, 1, 1): ValueError.
    answer = await raw_client.get(path, params={"period": "0000-01", "lang": "en"})
    assert answer.status_code < 500, f"{answer.status_code}: {answer.text[:200]}"


@pytest.mark.parametrize("period", ["2026\n", "2026-10\n"])
async def test_period_with_a_trailing_newline_is_rejected(
    raw_client: httpx.AsyncClient, settings: ReportingSettings, period: str
) -> None:
    # The period regexes end in "$", which also matches before a final newline: the label is
    # looked up as is (an empty ranking) and written into the Content-Disposition header.
    answer = await raw_client.get(
        "/api/v1/reports/ranking.csv", params={"period": period}, headers=as_staff(settings, "CT")
    )
    assert "\n" not in answer.headers.get("content-disposition", "")
    _is_clear_4xx(answer, "period")


async def test_the_briefing_of_a_unit_with_any_code_downloads_under_a_well_formed_name(
    raw_client: httpx.AsyncClient, reporting: Reporting, reporting_app: FastAPI, settings: ReportingSettings
) -> None:
    # Unit codes are typed by administrators: the code went as is into the file name of
    # Content-Disposition, where a letter outside Latin-1 was a 500 and a quote ended the name.
    code = 'P05.Đ"; x=1'
    body = {"units": [{"code": code, "name": "Thuế cơ sở Đặc biệt", "level": "local", "parent_code": "P05"}]}
    await apply(reporting, on_units_changed, message("ingest.units-changed.v1", body))
    reporting_app.state.read_model.invalidate()  # what the change listener does (it is off here)
    answer = await raw_client.get(
        "/api/v1/reports/briefing.pdf", params={"period": "2026-10", "unit": code}, headers=as_staff(settings, "CT")
    )
    assert answer.status_code == 200, answer.text[:300]
    disposition = answer.headers["content-disposition"]
    plain = 'attachment; filename="sqi-briefing-2026-10-P05.____x_1.pdf"'
    assert disposition == f"{plain}; filename*=UTF-8''sqi-briefing-2026-10-{quote(code, safe='')}.pdf"
