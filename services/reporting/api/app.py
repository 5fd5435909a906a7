"""The reporting API (dashboards, warnings, exports): a placeholder that answers health checks.

Reporting is built in a later issue; until then it starts, answers /healthz and /readyz,
and says so on its pages instead of pretending.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from shared.db import create_engine, database_ready
from shared.settings import CommonSettings
from shared.telemetry import configure_telemetry
from shared.web import create_app as create_service_app

SERVICE = "reporting"


def create_app() -> FastAPI:
    settings = CommonSettings()
    configure_telemetry(SERVICE, log_level=settings.log_level)
    engine = create_engine(settings, application_name=SERVICE)

    async def db_ready() -> bool:
        return await database_ready(engine)

    app = create_service_app(SERVICE, title="SQI reporting", checks={"database": db_ready})
    app.state.internal_token = settings.internal_token

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> str:
        return (
            '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>SQI — Chỉ số chất lượng phục vụ</title></head><body>"
            "<h1>SQI — Chỉ số chất lượng phục vụ người nộp thuế</h1>"
            "<p>Bảng xếp hạng công khai đang được xây dựng. / The public ranking page is being built.</p>"
            '<p><a href="/docs">API</a> · <a href="/rate">Đánh giá hồ sơ / Rate a dossier</a> · '
            '<a href="/petition">Phản ánh, kiến nghị / Petition</a></p></body></html>'
        )

    return app
