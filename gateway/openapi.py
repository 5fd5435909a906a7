"""One OpenAPI document for the whole public surface, merged from every service's own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import fastapi_offline
import httpx
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

# Swagger UI 5 (reads OpenAPI 3.1), as the fastapi-offline wheel ships it: served from our own
# files, never a CDN (government networks are closed).
DOCS_STATIC = Path(fastapi_offline.__file__).resolve().parent / "static"


def docs_page(openapi_url: str, *, static_prefix: str = "/docs/static") -> HTMLResponse:
    """The interactive docs page (``/docs``) for the merged document at ``openapi_url``."""
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title="SQI API — tài liệu / reference",
        swagger_js_url=f"{static_prefix}/swagger-ui-bundle.js",
        swagger_css_url=f"{static_prefix}/swagger-ui.css",
        swagger_favicon_url=f"{static_prefix}/favicon.png",
        swagger_ui_parameters={"docExpansion": "list", "defaultModelsExpandDepth": 0, "tryItOutEnabled": False},
    )


class MergedOpenApi:
    def __init__(
        self, client: httpx.AsyncClient, upstreams: dict[str, str], own: dict[str, Any], *, ttl_s: float = 60
    ) -> None:
        self._client = client
        self._upstreams = upstreams
        self._own = own
        self._ttl_s = ttl_s
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def document(self) -> dict[str, Any]:
        if self._cached and self._cached[0] > time.monotonic():
            return self._cached[1]
        doc: dict[str, Any] = {
            "openapi": self._own.get("openapi", "3.1.0"),
            "info": {
                "title": "SQI — Chỉ số chất lượng phục vụ / Service-quality index API",
                "version": "1",
                "description": "The public HTTP surface of SQI, behind the gateway.",
            },
            "paths": dict(self._own.get("paths", {})),
            "components": {
                "schemas": dict(self._own.get("components", {}).get("schemas", {})),
                "securitySchemes": {
                    "apiKey": {"type": "http", "scheme": "bearer", "description": "integrator key sqi_…"},
                    "staffJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                },
            },
        }
        complete = True
        for name, base in self._upstreams.items():
            try:
                response = await self._client.get(base.rstrip("/") + "/openapi.json", timeout=5)
                response.raise_for_status()
                part = response.json()
            except (httpx.HTTPError, ValueError):
                complete = False
                continue
            for path, item in part.get("paths", {}).items():
                for operation in item.values():
                    if isinstance(operation, dict):
                        operation.setdefault("tags", [name])
                doc["paths"][path] = item
            doc["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
        if complete:
            self._cached = (time.monotonic() + self._ttl_s, doc)
        return doc
