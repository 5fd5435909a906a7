"""The public ranking and the leadership dashboard in headless Chromium, through the gateway.

Reporting and the gateway run under uvicorn on 127.0.0.1 against a fresh database; the read
model is fed through reporting's own message handlers with the messages scoring and ingest
publish (units, scores, dossier events). Scoring is NOT running: the pages must answer from
the read model and say how old the data is. axe-core checks every page; screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from services.reporting.api.app import create_app
from services.reporting.bootstrap import bootstrap
from services.reporting.handlers.messages import (
    on_dossier_events,
    on_petition_changed,
    on_scores_updated,
    on_units_changed,
    seed_reference,
)
from services.reporting.settings import ReportingSettings
from shared.calendar import VN_TZ
from shared.messaging.topology import IncomingMessage
from shared.migrations import upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url
from tests.browser.support import ARGS, ARTIFACTS, CHROMIUM, REPO, free_port, served

pytestmark = pytest.mark.browser

URL = scratch_database_url("sqi_test_reporting_browser")
PERIOD = "2025-09"
LOCALS = [("P01.L01", "Thuế cơ sở 1 Hà Nội"), ("P01.L02", "Thuế cơ sở 2 Hà Nội")]
OVERDUE = "HS-BROWSER-QUAHAN-01"
PETITION = "PA-BROWSER-QUAHAN-01"


def _msg(routing_key: str, body: dict[str, Any]) -> IncomingMessage:
    return IncomingMessage(uuid.uuid4().hex, routing_key, orjson.dumps(body))


def _score(code: str, total: float, rank: int | None, provisional: bool = False) -> dict[str, Any]:
    return {
        "period": PERIOD,
        "computed_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
        "units": [
            {
                "unit_code": code,
                "scores": {
                    "tax-2025": {
                        "total": total,
                        "grade": "excellent" if total >= 90 else "good" if total >= 80 else "fair",
                        "rank": rank,
                        "rank_delta": 0 if rank else None,
                        "dossiers": 12 if provisional else 350,
                        "provisional": provisional,
                        "groups": {"G1": 16, "G2": 17.5, "G3": 19, "G4": 18, "G5": round(total - 70.5, 2)},
                        "indicators": [
                            {
                                "id": "2.1",
                                "numerator": 310,
                                "denominator": 350,
                                "ratio": 88.57,
                                "points": 17.71,
                                "max_points": 20,
                            },
                            {
                                "id": "3.1",
                                "numerator": 300,
                                "denominator": 350,
                                "ratio": 85.71,
                                "points": 5.14,
                                "max_points": 6,
                            },
                        ],
                    }
                },
            }
        ],
    }


async def _seed(settings: ReportingSettings) -> None:
    app = bootstrap(settings)
    with (settings.reference_dir / "units.csv").open(encoding="utf-8") as fh:
        provinces = [r["code"] for r in csv.DictReader(fh) if r["level"] == "province"]

    async def apply(handler: Any, msg: IncomingMessage) -> None:
        async with app.uow() as uow:
            await handler(msg, uow)

    async with app.uow() as uow:
        await seed_reference(settings.reference_dir, uow=uow)
    await apply(
        on_units_changed,
        _msg(
            "ingest.units-changed.v1",
            {"units": [{"code": c, "name": n, "level": "local", "parent_code": "P01"} for c, n in LOCALS]},
        ),
    )
    for i, code in enumerate(provinces):
        await apply(on_scores_updated, _msg("scoring.scores-updated.v3", _score(code, 96 - i, i + 1)))
    for i, (code, _) in enumerate(LOCALS):
        await apply(on_scores_updated, _msg("scoring.scores-updated.v3", _score(code, 85 - i, i + 1)))
    received = (datetime.now(VN_TZ) - timedelta(days=20)).isoformat()
    await apply(
        on_dossier_events,
        _msg(
            "ingest.dossier-events.v1",
            {
                "events": [
                    {
                        "source": "tms-hn",
                        "event_id": "browser-1",
                        "type": "dossier.received",
                        "occurred_at": received,
                        "data": {
                            "dossier_id": OVERDUE,
                            "unit_code": "P01.L01",
                            "procedure_code": "T.DKT.02",
                            "officer_id": "can-bo-nguyen-an",
                        },
                    }
                ],
                "accepted_at": datetime.now(UTC).isoformat(),
            },
        ),
    )
    # A petition past its answer deadline: the unit page lists it (no personal data in the message).
    long_ago = datetime.now(UTC) - timedelta(days=40)
    await apply(
        on_petition_changed,
        _msg(
            "feedback.petition-changed.v1",
            {
                "petition_id": PETITION,
                "version": 1,
                "change": "receive",
                "changed_at": long_ago.isoformat(),
                "unit_code": "P01.L01",
                "dossier_id": None,
                "category": "thue-tncn",
                "classification": "staff",
                "status": "received",
                "received_at": long_ago.isoformat(),
                "clock_started_at": long_ago.isoformat(),
                "refuse_due_at": (long_ago + timedelta(days=2)).isoformat(),
                "info_due_at": (long_ago + timedelta(days=7)).isoformat(),
                "answer_due_at": (long_ago + timedelta(days=21)).isoformat(),
                "publish_due_at": None,
                "refused_at": None,
                "info_requested_at": None,
                "answered_at": None,
                "published_at": None,
                "handled_on_time": None,
                "transfers": 0,
                "likes": 0,
                "dislikes": 0,
                "petitioned_again": False,
            },
        ),
    )
    await app.dispose()


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium and PostgreSQL")
    asyncio.run(recreate_database(URL))
    upgrade(REPO / "gateway" / "migrations", URL)
    upgrade(REPO / "services" / "reporting" / "migrations", URL)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: scoring is stopped
    settings = ReportingSettings(database_url=URL, environment="test", scoring_url=down)
    asyncio.run(_seed(settings))
    with served(create_app(bootstrap(settings), telemetry=False)) as reporting_url:
        gw_settings = GatewaySettings(
            database_url=URL,
            environment="test",
            reporting_url=reporting_url,
            scoring_url=down,
            ingest_url=down,
            feedback_url=down,
        )
        with served(create_gateway(gw_settings)) as url:
            yield url


@pytest.fixture(scope="module")
def browser(gateway_url: str):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def assert_accessible(page, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    page.screenshot(path=str(ARTIFACTS / f"reporting-{name}.png"), full_page=True)
    assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in bad]


@pytest.mark.parametrize("size", [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_citizen_opens_the_public_ranking_and_a_province(browser, gateway_url: str, size: tuple[int, int]) -> None:
    # Without JavaScript the ranking is all there (axe itself needs script, so it runs below).
    bare = browser.new_context(base_url=gateway_url, java_script_enabled=False)
    no_script = bare.new_page()
    no_script.goto("/")
    assert no_script.locator("table.ranking tbody tr").count() == 35
    bare.close()
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, base_url=gateway_url)
    page = context.new_page()
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert "Dữ liệu tính đến" in page.locator("#as-of").inner_text()
    rows = page.locator("table.ranking tbody tr")
    assert rows.count() == 35  # 34 provincial offices and the large-enterprises office
    assert "Xuất sắc" in rows.first.inner_text() and rows.first.locator("td").first.inner_text() == "1"
    assert "Thuế Thành phố Hà Nội" in page.locator("table.ranking").inner_text()
    assert page.get_by_role("link", name="Đánh giá hồ sơ").get_attribute("href") == "/rate"
    assert_accessible(page, f"public-{size[0]}")
    page.get_by_role("link", name="Thuế Thành phố Hà Nội").first.click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Thuế Thành phố Hà Nội")
    assert "310" in page.locator("table.indicators").inner_text()
    assert "Thuế cơ sở 1 Hà Nội" in page.content()
    assert OVERDUE not in page.content() and "can-bo" not in page.content()  # no dossier or officer in public
    assert_accessible(page, f"public-province-{size[0]}")
    page.get_by_role("link", name="English").click()
    assert "Data as of" in page.locator("#as-of").inner_text()
    context.close()


def test_leader_drills_down_to_overdue_dossiers_and_downloads(browser, gateway_url: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=gateway_url, accept_downloads=True)
    page = context.new_page()
    page.goto("/dashboard")
    assert "/dashboard/sign-in" in page.url
    assert_accessible(page, "sign-in")
    page.get_by_role("button", name="Lãnh đạo Cục Thuế / National leader (CT)").click()
    page.wait_for_url("**/dashboard**")
    assert page.locator("#ranking tbody tr").count() == 35
    assert "Dữ liệu tính đến" in page.locator("#as-of").inner_text()
    assert "Dữ liệu có thể chưa cập nhật" in page.locator("#as-of").inner_text()  # scores are 3 hours old
    assert_accessible(page, "dashboard")
    page.locator("#ranking").get_by_role("link", name="Thuế Thành phố Hà Nội").click()
    assert page.locator("svg.chart").count() == 1
    assert_accessible(page, "dashboard-province")
    page.get_by_role("link", name="Thuế cơ sở 1 Hà Nội").first.click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Thuế cơ sở 1 Hà Nội")
    petitions = page.locator("table.petitions")
    assert PETITION in petitions.inner_text() and "Quá hạn" in petitions.inner_text()
    assert_accessible(page, "dashboard-local")
    page.get_by_role("link", name="2.1", exact=False).first.click()
    table = page.locator("#dossiers")
    assert OVERDUE in table.inner_text() and "can-bo-nguyen-an" in table.inner_text()
    assert_accessible(page, "dashboard-indicator")
    # Switch period and language.
    page.goto("/dashboard?period=2025-09&level=province")
    page.get_by_role("link", name="English").click()
    assert "Dashboard" in page.get_by_role("heading", level=1).inner_text()
    # Downloads: CSV opens with the Vietnamese names.
    with page.expect_download() as info:
        page.get_by_role("link", name="CSV").click()
    text = Path(info.value.path()).read_bytes().decode("utf-8-sig")
    assert "Thuế Thành phố Hà Nội" in text and len(list(csv.reader(io.StringIO(text)))) >= 36
    with page.expect_download() as info:
        page.get_by_role("link", name="XLSX").click()
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes())).active
    assert sheet is not None
    assert any(c.value == "Thuế Thành phố Hà Nội" for row in sheet.iter_rows() for c in row)
    with page.expect_download() as info:
        page.get_by_role("link", name="PDF").click()
    from pypdf import PdfReader

    text = "\n".join(p.extract_text() or "" for p in PdfReader(info.value.path()).pages)
    assert "Thuế Thành phố Hà Nội" in text
    context.close()


def test_provincial_head_cannot_reach_another_province(browser, gateway_url: str) -> None:
    context = browser.new_context(base_url=gateway_url)
    page = context.new_page()
    page.goto("/dashboard/sign-in")
    page.get_by_role("button", name="Trưởng Thuế TP Hà Nội / Head of P01").click()
    page.wait_for_url("**/dashboard**")
    assert page.locator("#ranking tbody tr").count() == 2  # its local offices only
    refused = page.goto("/dashboard/units/P02")
    assert refused is not None and refused.status == 403
    assert_accessible(page, "forbidden")
    api = page.request.get("/api/v1/warnings?unit=P02")
    assert api.status == 403
    mine = page.request.get("/api/v1/warnings?unit=P01")
    assert mine.status == 200 and any(i["dossier_id"] == OVERDUE for i in mine.json()["items"])
    context.close()


def test_the_dashboard_reloads_when_a_score_changes(browser, gateway_url: str) -> None:
    """Live refresh: the page holds an event stream (through the gateway) and reloads itself
    when the worker's transaction changes a score. Runs last: it changes the read model."""
    context = browser.new_context(base_url=gateway_url)
    page = context.new_page()
    page.goto("/dashboard/sign-in")
    page.get_by_role("button", name="Lãnh đạo Cục Thuế / National leader (CT)").click()
    page.wait_for_url("**/dashboard**")
    page.wait_for_function("document.querySelector('[data-computed]').dataset.live === 'stream'", timeout=10_000)
    before = page.locator("[data-computed]").get_attribute("data-computed")
    settings = ReportingSettings(database_url=URL, environment="test")

    async def change() -> None:
        app = bootstrap(settings)
        body = _score("P34", 62.5, 34)
        body["computed_at"] = datetime.now(UTC).isoformat()
        async with app.uow() as uow:
            await on_scores_updated(_msg("scoring.scores-updated.v3", body), uow)
        await app.dispose()  # the NOTIFY goes out after the commit, in the background

    with page.expect_navigation(timeout=10_000):
        # Playwright's sync API owns this thread's event loop: the worker's handler runs in another.
        worker = threading.Thread(target=lambda: asyncio.run(change()))
        worker.start()
        worker.join(30)
    page.wait_for_load_state()
    assert page.locator("[data-computed]").get_attribute("data-computed") != before
    assert "62.5" in page.locator("#ranking").inner_text()
    context.close()
