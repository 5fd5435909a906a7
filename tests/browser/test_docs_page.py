"""``/docs`` renders the merged OpenAPI 3.1 document in headless Chromium, from the project's own
files: operations of several services are shown, no "Unable to render this definition", and the
page asks nothing of any other host (no CDN).

The gateway runs in-process under uvicorn; one small upstream server answers each service's
``/openapi.json`` with the document its real FastAPI app generates (no database needed for that).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from tests.browser.support import ARGS, ARTIFACTS, CHROMIUM, served

pytestmark = pytest.mark.browser

SERVICES = ("ingest", "scoring", "feedback")


def service_documents() -> dict[str, dict[str, Any]]:
    from services.feedback.api.app import create_app as feedback_app
    from services.ingest.api.app import create_app as ingest_app
    from services.scoring.api.app import create_app as scoring_app

    return {
        "ingest": ingest_app().openapi(),
        "scoring": scoring_app().openapi(),
        "feedback": feedback_app().openapi(),
    }


def upstream_app(documents: dict[str, dict[str, Any]]) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/{service}/openapi.json")
    async def document(service: str) -> JSONResponse:
        return JSONResponse(documents[service])

    return app


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium")
    with ExitStack() as servers:
        upstream_url = servers.enter_context(served(upstream_app(service_documents())))
        settings = GatewaySettings(
            ingest_url=f"{upstream_url}/ingest",
            scoring_url=f"{upstream_url}/scoring",
            feedback_url=f"{upstream_url}/feedback",
            reporting_url=f"{upstream_url}/reporting",  # answers 404: the document says so, still renders
        )
        yield servers.enter_context(served(create_gateway(settings)))


def test_docs_renders_the_merged_openapi_31_document(gateway_url: str) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        # The gateway's policy allows /docs' own inline bootstrap by its hash, nothing else inline.
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        answer = page.goto(f"{gateway_url}/docs")
        assert answer is not None
        script_src = answer.headers["content-security-policy"].split("script-src", 1)[1].split(";", 1)[0]
        assert "'unsafe-inline'" not in script_src and "'sha256-" in script_src
        # Swagger UI fetches the document and renders it in the browser: wait for the operations.
        page.wait_for_selector(".opblock", timeout=30_000)
        page.locator(".opblock").nth(10).wait_for(timeout=30_000)  # no wait_for_function: CSP forbids eval
        text = page.inner_text("body")
        operations = page.locator(".opblock").count()
        tags = [t.strip() for t in page.locator(".opblock-tag").all_inner_texts()]
        events = page.locator(".opblock-post .opblock-summary-path", has_text="/api/v1/events")
        petitions = page.locator(".opblock-post .opblock-summary-path", has_text="/api/v1/petitions")
        scores = page.locator(".opblock-get .opblock-summary-path", has_text="/api/v1/scores")
        assert events.first.is_visible() and petitions.first.is_visible() and scores.first.is_visible()
        version = page.locator(".info .title .version").first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "docs.png"), full_page=False)
        browser.close()

    assert "Unable to render this definition" not in text
    assert "OAS 3.1" in text or "3.1" in version, (version, text[:300])
    assert operations > 10, operations
    for service in SERVICES:
        assert any(tag.startswith(service) for tag in tags), (service, tags)
    assert "SQI" in text
    assert not refused, refused
    outside = [url for url in requested if not url.startswith((gateway_url, "data:", "blob:"))]
    assert not outside, f"/docs must load only the project's own files, asked for {outside}"
