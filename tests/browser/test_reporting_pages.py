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
from urllib.parse import quote

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
# A local office whose code and name an administrator typed carelessly or with hostile intent:
# URL syntax (? & # ") and a non-Latin-1 letter in the code, markup and script in the name.
HOSTILE_CODE = 'P02.Đ?period=1999-01&x="<b>#top%41'
# It ends in a right-to-left override (U+202E), which would turn the text after it around.
HOSTILE_NAME = '<img src=x onerror=alert(1)>Thuế cơ sở "Đặc biệt" & <script>alert(2)</script></title><!--\u202e'
SHOWN_NAME = HOSTILE_NAME.removesuffix("\u202e")  # explicit direction controls are not shown
# The longest name ingest takes (300 characters), most of it one "word": it must wrap on a phone.
LONG_CODE, LONG_NAME = "P02.DAI", "Thuế cơ sở " + "Đ" * 289
CSP_WORDS = "Content Security Policy"


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
            {
                "units": [{"code": c, "name": n, "level": "local", "parent_code": "P01"} for c, n in LOCALS]
                + [{"code": HOSTILE_CODE, "name": HOSTILE_NAME, "level": "local", "parent_code": "P02"}]
                + [{"code": LONG_CODE, "name": LONG_NAME, "level": "local", "parent_code": "P02"}]
            },
        ),
    )
    for i, code in enumerate(provinces):
        await apply(on_scores_updated, _msg("scoring.scores-updated.v3", _score(code, 96 - i, i + 1)))
    for i, (code, _) in enumerate(LOCALS):
        await apply(on_scores_updated, _msg("scoring.scores-updated.v3", _score(code, 85 - i, i + 1)))
    await apply(on_scores_updated, _msg("scoring.scores-updated.v3", _score(HOSTILE_CODE, 81, 3)))
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


def sign_in(page: Any, who: str) -> None:
    """Sign in on the dashboard's development sign-in page as the button ``who`` names."""
    page.goto("/dashboard/sign-in")
    page.get_by_role("button", name=who).click()
    page.wait_for_url("**/dashboard**")


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
    sign_in(page, "Trưởng Thuế TP Hà Nội / Head of P01")
    assert page.locator("#ranking tbody tr").count() == 2  # its local offices only
    refused = page.goto("/dashboard/units/P02")
    assert refused is not None and refused.status == 403
    assert_accessible(page, "forbidden")
    api = page.request.get("/api/v1/warnings?unit=P02")
    assert api.status == 403
    mine = page.request.get("/api/v1/warnings?unit=P01")
    assert mine.status == 200 and any(i["dossier_id"] == OVERDUE for i in mine.json()["items"])
    context.close()


def _watch_for_injection(page) -> tuple[list[str], list[str]]:
    """Dialogs opened and CSP violations reported on ``page`` (both must stay empty)."""
    dialogs: list[str] = []
    violations: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: violations.append(m.text) if CSP_WORDS in m.text else None)
    return dialogs, violations


def _assert_inert(page) -> None:
    """The hostile name is shown as text: no element of its markup made it into the page."""
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script:not([src])").count() == 0
    assert page.get_by_text('Thuế cơ sở "Đặc biệt"', exact=False).count() >= 1


def _assert_reads_left_to_right(page) -> None:
    """The period after the name in the heading reads left to right: "2025" is drawn 2, 0, 2, 5
    from the left, not turned around by a direction control in the name."""
    order = page.locator("h1").evaluate(
        """(h1) => {
            const text = h1.firstChild;
            const at = text.data.lastIndexOf("2025");
            const x = (i) => { const r = document.createRange(); r.setStart(text, i); r.setEnd(text, i + 1);
                               return r.getBoundingClientRect().left; };
            return [x(at), x(at + 3)];
        }"""
    )
    assert order[0] < order[1], order


def test_hostile_unit_names_and_codes_stay_text_and_link_to_their_unit(browser, gateway_url: str) -> None:
    """A unit's name is element text, its code a percent-encoded path segment: no markup of the
    name runs, and its link opens its own page, not another path or query its code spells."""
    context = browser.new_context(base_url=gateway_url)
    page = context.new_page()
    dialogs, violations = _watch_for_injection(page)
    page.goto("/ranking/P02")
    _assert_inert(page)
    page.locator("table.ranking a", has_text="Đặc biệt").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text().startswith(SHOWN_NAME)
    _assert_inert(page)
    _assert_reads_left_to_right(page)
    page.get_by_role("button", name="Xem").click()  # the period picker posts back to the same unit
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text().startswith(SHOWN_NAME)
    page.get_by_role("link", name="English").click()  # the language switch keeps the unit
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text().startswith(SHOWN_NAME)
    assert page.locator("html").get_attribute("lang") == "en"

    sign_in(page, "Lãnh đạo Cục Thuế / National leader (CT)")
    page.goto("/dashboard?level=local")
    _assert_inert(page)
    page.locator("#ranking a", has_text="Đặc biệt").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text().startswith(SHOWN_NAME)
    assert page.locator("svg.chart").count() == 1  # the chart titled with the name
    _assert_reads_left_to_right(page)
    _assert_inert(page)
    page.get_by_role("button", name="Xem").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text().startswith(SHOWN_NAME)
    page.get_by_role("link", name="2.1", exact=False).first.click()
    page.wait_for_load_state()
    assert SHOWN_NAME in page.get_by_role("heading", level=1).inner_text()
    page.get_by_role("link", name=f"← {SHOWN_NAME}").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text().startswith(SHOWN_NAME)
    assert not dialogs and not violations, (dialogs, violations)
    context.close()


def test_a_very_long_unit_name_wraps_on_a_phone(browser, gateway_url: str) -> None:
    """Its page stays as wide as the phone: the name breaks over lines, nothing needs scrolling
    sideways but the tables, which scroll inside their own box (the dashboard's trend figures
    too, whatever the unit: they made every unit's page about 800 px wide)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=gateway_url)
    page = context.new_page()
    paths = (f"/ranking/{LONG_CODE}", "/dashboard/sign-in", f"/dashboard/units/{LONG_CODE}", "/dashboard/units/P01")
    for path in paths:
        if path == "/dashboard/sign-in":
            page.goto(path)
            page.get_by_role("button", name="Lãnh đạo Cục Thuế / National leader (CT)").click()
            page.wait_for_url("**/dashboard**")
            continue
        page.goto(path)
        if LONG_CODE in path:
            heading = page.get_by_role("heading", level=1)
            assert LONG_NAME in heading.inner_text()
            box = heading.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390, (path, box)
            assert heading.evaluate("(h) => h.scrollWidth <= h.clientWidth"), path
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, path
        if path.startswith("/dashboard/units/"):
            # The trend figures are all there, in a box of their own that scrolls sideways.
            figures = page.locator("figure.trend table")
            assert figures.locator("th").count() >= 6, path
            assert figures.evaluate(
                "(t) => { const box = t.parentElement;"
                " return getComputedStyle(box).overflowX === 'auto' && box.scrollWidth > box.clientWidth"
                " && box.getBoundingClientRect().right <= 390; }"
            ), path
            assert_accessible(page, f"dashboard-unit-phone-{path.rsplit('/', 1)[1]}")  # a keyboard scrolls it too
    context.close()


def test_the_briefing_of_a_unit_with_a_hostile_code_downloads_under_a_safe_name(browser, gateway_url: str) -> None:
    context = browser.new_context(base_url=gateway_url)
    page = context.new_page()
    sign_in(page, "Lãnh đạo Cục Thuế / National leader (CT)")
    answer = page.request.get("/api/v1/reports/briefing.pdf", params={"period": PERIOD, "unit": HOSTILE_CODE})
    assert answer.status == 200, answer.text()[:300]
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="sqi-briefing-2025-09-P02.')
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and not set(fallback) & set('"\\;<>?#&'), disposition
    assert "filename*=UTF-8''sqi-briefing-2025-09-" + quote(HOSTILE_CODE, safe="") + ".pdf" in disposition
    context.close()


def test_pages_carry_the_security_headers_and_break_no_policy(browser, gateway_url: str) -> None:
    """One policy, set by the gateway: only our own script files run, nothing is loaded from
    elsewhere, no page can be framed, MIME types are not guessed, no referrer leaves the site."""
    context = browser.new_context(base_url=gateway_url)
    page = context.new_page()
    _, violations = _watch_for_injection(page)
    for path in ("/", "/ranking/P01", "/ranking/methodology", "/dashboard/sign-in"):
        answer = page.goto(path)
        assert answer is not None and answer.ok
        headers = answer.headers
        policy = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split(";") if d.strip()}
        assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
        assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
    # Our own pages work under it: the dashboard's chart and live script, the sign-in form.
    page.get_by_role("button", name="Lãnh đạo Cục Thuế / National leader (CT)").click()
    page.wait_for_url("**/dashboard**")
    # A locator, not wait_for_function: the page's policy forbids the eval that one polls with.
    page.locator("[data-computed][data-live='stream']").wait_for(timeout=10_000)
    page.locator("#ranking").get_by_role("link", name="Thuế Thành phố Hà Nội").click()
    assert page.locator("svg.chart").count() == 1
    # Script the policy forbids does not run: an inline script added now is refused.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.__ran") is None
    assert any("script" in v for v in violations), violations
    assert all("inline script" in v or "script-src" in v for v in violations), violations
    csv_answer = page.request.get(f"/api/v1/reports/ranking.csv?period={PERIOD}")
    assert csv_answer.headers["x-content-type-options"] == "nosniff"
    context.close()


def test_the_dashboard_reloads_when_a_score_changes(browser, gateway_url: str) -> None:
    """Live refresh: the page holds an event stream (through the gateway) and reloads itself
    when the worker's transaction changes a score. Runs last: it changes the read model."""
    context = browser.new_context(base_url=gateway_url)
    page = context.new_page()
    sign_in(page, "Lãnh đạo Cục Thuế / National leader (CT)")
    # A locator, not wait_for_function: the page's policy forbids the eval that one polls with.
    page.locator("[data-computed][data-live='stream']").wait_for(timeout=10_000)
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
