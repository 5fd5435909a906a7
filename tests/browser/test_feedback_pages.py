"""A citizen rates a dossier and files and follows a petition in headless Chromium.

The app runs under uvicorn on 127.0.0.1 (ephemeral port) against its own fresh database;
axe-core checks every page for serious or critical accessibility violations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from services.feedback.api.app import create_app
from services.feedback.bootstrap import bootstrap
from services.feedback.handlers.messages import seed_reference_units
from services.feedback.settings import FeedbackSettings
from shared.migrations import upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url
from tests.browser.support import ARGS, ARTIFACTS, CHROMIUM, REPO, served

pytestmark = pytest.mark.browser

MIGRATIONS = REPO / "services" / "feedback" / "migrations"
URL = scratch_database_url("sqi_test_feedback_browser")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium and PostgreSQL")
    asyncio.run(recreate_database(URL))
    upgrade(MIGRATIONS, URL)
    settings = FeedbackSettings(database_url=URL, environment="test")

    async def seed() -> None:
        app = bootstrap(settings)
        async with app.uow() as uow:
            await seed_reference_units(settings.reference_dir / "units.csv", uow=uow)
            # The dossier the receipt link rates, as ingest's events make it known.
            await uow.session.execute(
                text("INSERT INTO feedback.dossier_unit VALUES ('HS-BROWSER-0001', 'P01', now(), 'P01')")
            )
        await app.dispose()

    asyncio.run(seed())
    with served(create_app(bootstrap(settings), telemetry=False)) as url:
        yield url


@pytest.fixture(scope="module")
def page(base_url: str):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=base_url)  # a phone
        yield context.new_page()
        context.close()
        browser.close()


def assert_accessible(page, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    page.screenshot(path=str(ARTIFACTS / f"feedback-{name}.png"), full_page=True)
    assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in bad]


def test_citizen_rates_from_the_receipt_link(page) -> None:
    settings = FeedbackSettings(database_url=URL)
    dossier = "HS-BROWSER-0001"
    code = bootstrap(settings).rating_codes.issue(dossier, "P01")
    page.goto(f"/rate?d={dossier}&c={code}")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.get_by_label("Mã hồ sơ").input_value() == dossier
    assert_accessible(page, "rate")
    # Sending without a level shows the error summary, linked to the field.
    page.get_by_role("button", name="Gửi đánh giá").click()
    summary = page.get_by_role("alert")
    assert "Vui lòng chọn mức độ hài lòng chung" in summary.inner_text()
    assert summary.get_by_role("link").first.get_attribute("href") == "#level"
    assert_accessible(page, "rate-errors")
    page.get_by_label("Rất hài lòng").check()
    page.get_by_role("group", name="Thái độ và tinh thần trách nhiệm của công chức").get_by_label(
        "Tốt", exact=True
    ).check()
    page.get_by_label("Góp ý").fill("Cán bộ hướng dẫn tận tình.")
    page.get_by_role("button", name="Gửi đánh giá").click()
    page.wait_for_url("**/rate/thanks*")
    assert "Cảm ơn bạn đã đánh giá" in page.inner_text("h1")
    assert_accessible(page, "rate-thanks")


def test_english_switch(page) -> None:
    page.goto("/rate")
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("h1") == "Rate your satisfaction"
    assert_accessible(page, "rate-en")


def test_citizen_files_and_follows_a_petition(page) -> None:
    page.goto("/petition")
    assert_accessible(page, "petition")
    page.get_by_label("Cơ quan thuế", exact=True).select_option("P01")
    page.get_by_label("Tiến độ giải quyết hồ sơ").check()
    page.get_by_label("Tiêu đề").fill("Hồ sơ chậm trả kết quả")
    page.get_by_label("Nội dung", exact=True).fill("Đã quá ngày hẹn trả nhưng chưa nhận được kết quả.")
    page.get_by_role("button", name="Gửi phản ánh").click()
    page.wait_for_url("**/petition/PA*")
    petition_id = page.inner_text("#new-petition-id")
    access_code = page.inner_text("#new-access-code")
    assert len(access_code) == 8 and "Đã tiếp nhận" in page.inner_text("#status")
    assert_accessible(page, "petition-sent")
    # Later, in a fresh session: follow it with the number and the access code.
    page.context.clear_cookies()
    page.goto(f"/petition/{petition_id}")
    assert page.get_by_label("Mã tra cứu").is_visible()
    page.get_by_label("Mã tra cứu").fill("WRONG222")
    page.get_by_role("button", name="Xem tình trạng").click()
    assert "Không tìm thấy" in page.get_by_role("alert").inner_text()
    assert_accessible(page, "petition-follow-error")
    page.get_by_label("Mã phản ánh").fill(petition_id)
    page.get_by_label("Mã tra cứu").fill(access_code)
    page.get_by_role("button", name="Xem tình trạng").click()
    page.wait_for_url(f"**/petition/{petition_id}")
    assert "Đã tiếp nhận" in page.inner_text("#status")
    assert_accessible(page, "petition-status")


def test_hostile_petition_text_stays_text_and_fits_the_phone(page) -> None:
    """What a citizen types comes back as text in every context it is written into (an input's
    value, a textarea, a heading): no markup of it runs; a long word wraps on a phone."""
    title = '"><img src=x onerror=alert(1)>' + "Đ" * 160
    content = "</textarea><script>alert(2)</script><!-- Hồ sơ chậm trả kết quả -->"
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/petition")
    page.get_by_label("Cơ quan thuế", exact=True).select_option("P01")
    page.get_by_label("Tiêu đề").fill(title)
    page.get_by_label("Nội dung", exact=True).fill(content)
    page.get_by_role("button", name="Gửi phản ánh").click()  # no category: the form comes back
    assert "Vui lòng chọn" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Tiêu đề").input_value() == title
    assert page.get_by_label("Nội dung", exact=True).input_value() == content
    assert page.locator("img[src='x']").count() == 0 and page.locator("script").count() == 0
    page.get_by_label("Tiến độ giải quyết hồ sơ").check()
    page.get_by_role("button", name="Gửi phản ánh").click()
    page.wait_for_url("**/petition/PA*")
    heading = page.get_by_role("heading", level=2).first
    assert heading.inner_text() == title
    assert page.locator("img[src='x']").count() == 0 and page.locator("script").count() == 0
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert not dialogs, dialogs
