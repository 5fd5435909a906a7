"""The gateway: the one public entry (``uvicorn gateway.app:create_app --factory``).

Authenticates (integrator keys, staff JWTs), limits (body size, citizen writes per client
address), routes to the services with the verified identity, audits admin changes, and
serves the merged OpenAPI document and its docs page (assets bundled: no CDN).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy import insert
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api_keys import router as keys_router
from gateway.clients import client_address, limit_key, site_key
from gateway.jwt_auth import TokenError, TokenVerifier
from gateway.keys import KeyVerifier
from gateway.openapi import DOCS_STATIC, MergedOpenApi, docs_page
from gateway.paths import BadPath, check_query, normalise
from gateway.proxy import forward, upstream_client
from gateway.ratelimit import RateLimiter
from gateway.routing import Route, credential_write, match, upstreams
from gateway.security_headers import script_hashes, security_headers, set_on_every_answer
from gateway.settings import GatewaySettings
from gateway.tables import audit
from gateway.upstream import Upstream
from shared.db import create_engine, database_ready, session_factory
from shared.identity import ANONYMOUS, INTERNAL_TOKEN_HEADER, Principal, from_gateway
from shared.metrics import CITIZEN_WRITES_REFUSED
from shared.telemetry import configure_telemetry
from shared.web import ApiError, ReadyCheck, error_response, principal_from, without_body
from shared.web import create_app as create_base_app

SERVICE = "gateway"
STAFF_SESSION_COOKIE = "sqi_session"  # set by the dashboard's sign-in (reporting)
DOCS_OPENAPI_URL = "/api/v1/openapi.json"


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.engine = create_engine(settings, application_name=SERVICE)
        self.sessions = session_factory(self.engine)
        self.keys = KeyVerifier(
            self.sessions, cache_s=settings.api_key_cache_s, max_entries=settings.api_key_cache_size
        )
        self.tokens = TokenVerifier(settings)
        self.limiter = RateLimiter(settings.citizen_writes_per_minute, max_clients=settings.citizen_write_clients_max)
        self.site_limiter = RateLimiter(
            settings.citizen_writes_per_minute_per_site, max_clients=settings.citizen_write_clients_max
        )
        self.upstreams = upstreams(settings)
        timeout = httpx.Timeout(settings.upstream_timeout_s, connect=3.0)
        # A keep-alive pool per service (gateway.upstream; httpx cost half the gateway's CPU per
        # request): one pool for all services made every ingest request pay for the readers'.
        self.services = {
            name: Upstream(base, timeout_s=settings.upstream_timeout_s, connect_timeout_s=3.0, max_connections=100)
            for name, base in self.upstreams.items()
        }
        # Readiness probes and the merged OpenAPI document.
        self.client = upstream_client(timeout=timeout, limits=httpx.Limits(max_connections=20))
        # Event streams hold their upstream connection for as long as the page is open: a pool
        # of their own, so open dashboards never take the connections other requests need.
        self.stream_client = upstream_client(
            timeout=httpx.Timeout(settings.upstream_timeout_s, connect=3.0, pool=1.0),
            limits=httpx.Limits(max_connections=settings.max_event_streams, max_keepalive_connections=0),
        )

    async def authenticate(self, request: Request) -> Principal:
        auth = request.headers.get("authorization", "")
        presented_key = request.headers.get("x-api-key")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if auth and bearer is None:
            raise ApiError(401, "use 'Authorization: Bearer <key or token>'")
        if not auth and not presented_key and (cookie := request.cookies.get(STAFF_SESSION_COOKIE)):
            # Pages opened in a browser (the dashboard) carry the staff token in the cookie the
            # sign-in set; an expired one is no sign-in, so public pages still answer.
            try:
                return self.tokens.verify(cookie)
            except TokenError:
                return ANONYMOUS
        if presented_key or (bearer and bearer.startswith("sqi_")):
            principal = await self.keys.verify(presented_key or bearer or "")
            if principal is None:
                raise ApiError(401, "unknown or revoked API key")
            return principal
        if bearer:
            try:
                return self.tokens.verify(bearer)
            except TokenError as exc:
                raise ApiError(401, f"invalid token: {exc}") from exc
        return ANONYMOUS

    def client_address(self, request: Request) -> str:
        """The address the citizen limits count: the peer, or what our own proxy saw.

        The trust rule (which peers may name the client in X-Forwarded-For) is
        :func:`gateway.clients.client_address`'s. uvicorn's own proxy-header handling is switched
        off for the gateway (--no-proxy-headers) so this is the one place that decides.
        """
        return client_address(
            request.client.host if request.client else "unknown",
            request.headers.getlist("x-forwarded-for"),
            trusted=self.settings.trusted_proxies,
            trust_any_peer=self.settings.trust_forwarded_for,
        )

    def metrics_allowed(self, request: Request) -> bool:
        """``/metrics`` is for Prometheus, not for the public (docs/decisions.md, gateway).

        Allowed with the internal token (header or bearer); and, behind the ingress
        (``SQI_TRUST_FORWARDED_FOR``), to in-cluster scrapes, which carry no X-Forwarded-For —
        every request through the ingress does.
        """
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        token = request.headers.get(INTERNAL_TOKEN_HEADER) or bearer
        if from_gateway(token, self.settings.internal_token):
            return True
        return self.settings.trust_forwarded_for and "x-forwarded-for" not in request.headers

    def max_bytes(self, path: str, citizen: bool) -> int:
        if path in ("/api/v1/events", "/api/v1/ratings/import"):  # integrators' bulk routes
            return self.settings.events_max_bytes
        if citizen:
            return self.settings.citizen_max_bytes
        return self.settings.default_max_bytes


def refuse_bad_paths(request: Request) -> Response | None:
    """Normalise the path once (gateway.paths); routing and forwarding see only that form."""
    try:
        normal = normalise(request.scope.get("raw_path") or request.scope["path"].encode())
        check_query(request.scope.get("query_string", b""))
    except BadPath as exc:
        return error_response(
            400, "the request path is not acceptable", details=[{"field": exc.field, "reason": exc.reason}]
        )
    request.scope["path"] = normal.decoded
    request.scope["raw_path"] = normal.encoded.encode("ascii")
    return None


def refuse_large_headers(request: Request, settings: GatewaySettings) -> Response | None:
    """431 for a header block no SQI client sends, before auth reads it or a service is sent it."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    if len(headers) > settings.max_header_fields:
        reason = f"at most {settings.max_header_fields} header fields"
    elif sum(len(name) + len(value) for name, value in headers) > settings.max_header_bytes:
        reason = f"at most {settings.max_header_bytes} bytes of header names and values"
    else:
        return None
    return error_response(
        431,
        "the request's headers are too large",
        code="headers_too_large",
        details=[{"field": "headers", "reason": reason}],
    )


def _declared_over(request: Request, limit: int) -> bool:
    declared = request.headers.get("content-length")
    return bool(declared and declared.isdigit() and int(declared) > limit)


def refuse_declared_oversize(request: Request, limit: int) -> Response | None:
    """413 before the body is read when its declared length exceeds ``limit``: the gateway's own
    routes (API keys) are parsed by FastAPI, which reads the whole body first — 40 MB sent to
    ``POST /api/v1/keys`` anonymously were read, then refused (session 18's review). Proxied
    routes also stop a body without a length at their own limit (:func:`read_body`)."""
    return error_response(413, f"the body exceeds {limit} bytes") if _declared_over(request, limit) else None


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a body passes its limit. An HTTPException, because FastAPI
    turns any other error met while it reads a body into a 400 "error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body exceeds {limit} bytes")
        self.limit = limit


class BodyLimit:
    """Stops every request body at its route's limit as it arrives, whoever reads it.

    The gateway's own routes (``POST /api/v1/keys``) are parsed by FastAPI, which reads the whole
    body before anything else — even before it checks the caller: a chunked body (no length to
    refuse up front, :func:`refuse_declared_oversize`) of any size was read into memory. This
    wraps ``receive`` for every request, so no route, present or future, can read past the limit.
    The limit is looked up at the first chunk, when the guard has normalised the path.
    """

    def __init__(self, app: ASGIApp, *, limit_of: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > (limit := self.limit_of(scope)):
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


async def body_too_large(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    reason = f"at most {exc.limit} bytes on this route"
    return error_response(413, str(exc.detail), details=[{"field": "body", "reason": reason}])


async def read_body(request: Request, limit: int) -> bytes:
    if _declared_over(request, limit):
        raise ApiError(413, f"the body exceeds {limit} bytes")
    if "content-length" not in request.headers and "transfer-encoding" not in request.headers:
        return b""  # HTTP/1.1: a request with neither header has no body (RFC 9112 §6.3)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_telemetry(SERVICE, log_level=settings.log_level)
    gw = Gateway(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for client in (gw.client, gw.stream_client):
            await client.aclose()
        for service in gw.services.values():
            await service.aclose()
        await gw.engine.dispose()

    async def db_ready() -> bool:
        return await database_ready(gw.engine)

    async def broker_ready() -> bool:
        try:
            connection = await aio_pika.connect(settings.amqp_url, timeout=3)
        except Exception:
            return False
        await connection.close()
        return True

    def service_ready(base: str) -> ReadyCheck:
        async def check() -> bool:
            try:
                return (await gw.client.get(base.rstrip("/") + "/readyz", timeout=3)).status_code == 200
            except httpx.HTTPError:
                return False

        return check

    checks: dict[str, ReadyCheck] = {"database": db_ready, "broker": broker_ready}
    checks.update({name: service_ready(base) for name, base in gw.upstreams.items()})
    app = create_base_app(
        SERVICE,
        title="SQI gateway",
        checks=checks,
        # The pod's readiness: the gateway's own database. Not the broker (the gateway publishes
        # nothing; an outage refuses no event, the services' outboxes hold them) nor one service
        # (the routes to the others keep working): either took every gateway pod out of the
        # Service, and the whole public API answered 503.
        own_checks={"database": db_ready},
        lifespan=lifespan,
        # No route takes more than the integrators' bulk limit; the exact limit of a proxied
        # route is checked again when its body is read.
        guard=lambda request: (
            refuse_large_headers(request, settings)
            or refuse_bad_paths(request)
            or refuse_declared_oversize(request, gw.max_bytes(request.scope["path"], citizen=False))
        ),
        metrics_allowed=gw.metrics_allowed,
    )
    app.state.gateway = gw
    app.add_middleware(BodyLimit, limit_of=lambda scope: gw.max_bytes(scope["path"], citizen=False))
    # /docs' inline bootstrap script is allowed by its hash: the page is rendered the same every time.
    docs_scripts = script_hashes(bytes(docs_page(DOCS_OPENAPI_URL).body).decode())
    set_on_every_answer(app, security_headers(docs_scripts))
    app.add_exception_handler(BodyTooLarge, body_too_large)
    app.state.internal_token = settings.internal_token
    app.include_router(keys_router)

    async def gateway_principal(request: Request) -> Principal:
        # The gateway's own endpoints authenticate the caller directly, not from forwarded headers.
        return await gw.authenticate(request)

    app.dependency_overrides[principal_from] = gateway_principal
    merged = MergedOpenApi(gw.client, gw.upstreams, app.openapi())
    app.mount("/docs/static", StaticFiles(directory=DOCS_STATIC), name="docs-static")

    @app.get(DOCS_OPENAPI_URL, include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(await merged.document())

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return docs_page(DOCS_OPENAPI_URL)

    async def proxy(request: Request) -> Response:
        # The normalised path (refuse_bad_paths), not request.url.path, which re-parses it.
        routed_path: str = request.scope["path"]
        route: Route = request.scope[ROUTED]  # ProxyRoute found it
        principal = await gw.authenticate(request)
        is_write = request.method in ("POST", "PUT", "PATCH", "DELETE")
        # A credential is no pass on the citizen routes: only its own writes there are unlimited.
        citizen_write = route.citizen_writes and is_write and not credential_write(routed_path, principal)
        body = await read_body(request, gw.max_bytes(routed_path, route.citizen_writes and is_write))
        address = gw.client_address(request)
        if citizen_write and (refused := refuse_citizen_write(gw, address, route.prefix)) is not None:
            return refused
        response = await forward(
            gw.services[route.service],
            gw.stream_client,
            request=request,
            body=body,
            principal=principal,
            client_address=address,
            internal_token=settings.internal_token,
        )
        if principal.is_admin and is_write:
            await record_audit(gw, principal, request, response.status_code)
        return response

    # Last: every route above is tried first (the router takes the first that takes the method).
    app.router.add_api_route(
        "/{path:path}", proxy, methods=PROXIED_METHODS, include_in_schema=False, route_class_override=ProxyRoute
    )
    return app


PROXIED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
ROUTED = "sqi.routed"  # the scope key of the service route ProxyRoute matched


class ProxyRoute(APIRoute):
    """The catch-all route: forwards a path a service answers, with any method.

    Starlette's router takes the first route that takes both the path and the method over one
    that takes only the path, so a method the gateway's own route on a path does not take (HEAD
    and OPTIONS on ``/docs``) reached this route; there no service answered the path, and it
    was a 404. Such a path is answered here as the own routes would: see :func:`answer_own`.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        routed = match(scope["path"]) if scope["type"] == "http" else None
        if routed is None:
            await answer_own(scope, receive, send, proxy=self)
            return
        scope[ROUTED] = routed  # the endpoint's; matched once a request
        await super().handle(scope, receive, send)


async def answer_own(scope: Scope, receive: Receive, send: Send, *, proxy: BaseRoute) -> None:
    """A path no service answers, with a method none of the gateway's own routes on it takes
    (RFC 9110): HEAD where GET is taken is that GET without its body (§9.3.2); any other method
    is 405 with every method the path takes in ``Allow`` (§15.5.6); a path no route takes, 404.
    OPTIONS is a 405 too, as in the services: no SQI client asks it (no cross-origin callers)."""
    router: Router = scope["router"]
    methods = own_methods(router.routes, scope, proxy=proxy)
    if not methods or _hidden(scope):
        raise ApiError(404, "no such path")
    if scope["method"] == "HEAD" and "GET" in methods:
        await router({**scope, "method": "GET"}, receive, without_body(send))
        return
    raise StarletteHTTPException(405, headers={"Allow": ", ".join(sorted(methods))})


def own_methods(routes: list[BaseRoute], scope: Scope, *, proxy: BaseRoute) -> set[str]:
    """The methods the routes other than ``proxy`` take on the scope's path, HEAD with GET.

    Each method is tried against the routes on the path (an included router, the API keys',
    says nothing of its routes' methods otherwise); a path no route takes costs one pass."""
    on_path = [route for route in routes if route is not proxy and route.matches(scope)[0] is not Match.NONE]
    methods = {
        method
        for method in PROXIED_METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in on_path)
    }
    return methods | {"HEAD"} if "GET" in methods else methods


def _hidden(scope: Scope) -> bool:
    """``/metrics`` is a 404 to whoever may not read it (docs/decisions.md, gateway), whatever
    the method: a 405 would tell that it is there."""
    gw: Gateway = scope["app"].state.gateway
    return scope["path"] == "/metrics" and not gw.metrics_allowed(Request(scope))


def refuse_citizen_write(gw: Gateway, address: str, prefix: str) -> Response | None:
    """429 past the client's writes a minute, or past its IPv6 site's (/48); 503 while a limiter
    is full of other clients. The client is asked first: a client refused for its own writes
    takes nothing from its site's neighbours."""
    limits = gw.settings
    verdict = gw.limiter.allow(limit_key(address))
    too_many = f"too many writes from this address; at most {limits.citizen_writes_per_minute} a minute"
    site = site_key(address)
    if verdict.allowed and site is not None:
        verdict = gw.site_limiter.allow(site)
        too_many = (
            "too many writes from this network (IPv6 /48); "
            f"at most {limits.citizen_writes_per_minute_per_site} a minute"
        )
    if verdict.allowed:
        return None
    CITIZEN_WRITES_REFUSED.labels(prefix).inc()
    headers = {"Retry-After": str(verdict.retry_after)}
    if verdict.crowded:
        return error_response(503, "too many clients are writing right now; try again shortly", headers=headers)
    return error_response(429, too_many, headers=headers)


async def record_audit(gw: Gateway, principal: Principal, request: Request, status: int) -> None:
    """Every change an admin makes is written down: who, what, when, with what result."""
    values: dict[str, Any] = {
        "actor": principal.sub,
        "method": request.method,
        "path": request.scope["path"],
        "status": status,
        "request_id": request.state.request_id,
    }
    async with gw.sessions() as session, session.begin():
        await session.execute(insert(audit).values(values))
