"""What every SQI HTTP app shares: the error body, request ids, health and metrics, identity."""

from __future__ import annotations

import logging
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import caused_by, transient_conflict
from shared.heap import freeze_startup_heap
from shared.identity import (
    CLIENT_ADDRESS_HEADER,
    INTERNAL_TOKEN_HEADER,
    PRINCIPAL_HEADER,
    Principal,
    decode_principal,
    from_gateway,
)
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# A client's request id is kept only when it is a short, log-safe token; otherwise replaced.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    423: "locked",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """An error the caller must see as ``{"error": {code, message, details}}``."""

    def __init__(self, status: int, message: str, *, code: str | None = None, details: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "error")
        self.message = message
        self.details = list(details)


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Sequence[Any] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "code": code or _STATUS_CODES.get(status, "error"),
            "message": message,
            "details": list(details),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``[{field, reason}]`` with a dotted field path."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        out.append({"field": ".".join(loc) or "body", "reason": str(err.get("msg", "invalid"))})
    return out


# While PostgreSQL is unreachable, restarting or full, a request is refused as 503 with a hint of
# when to come back (clients and the gateway retry), not as a 500 that reads like a bug.
RETRY_AFTER_SECONDS = 5
_DATABASE_UNAVAILABLE = (
    asyncpg.exceptions.PostgresConnectionError,  # class 08, with ConnectionDoesNotExistError
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    ConnectionError,  # refused, reset, aborted
    TimeoutError,  # connect timeout (asyncio's is the builtin)
    socket.gaierror,  # the host name does not resolve
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (see :func:`shared.db.caused_by`)."""
    # A bare OSError is what asyncio raises when every address of the host refused.
    return caused_by(exc, lambda e: isinstance(e, _DATABASE_UNAVAILABLE) or type(e) is OSError)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, details=exc.details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "the request is not valid", details=field_errors(exc))

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        if transient_conflict(exc):
            # A deadlock or serialisation conflict PostgreSQL broke: nothing was written; again works.
            log.warning("transaction conflict", extra={"request_id": getattr(request.state, "request_id", None)})
            return error_response(
                503, "a concurrent change conflicted with this request; try again", headers={"Retry-After": "1"}
            )
        if not database_unavailable(exc):
            raise exc  # any other error: the 500 below, exactly as before
        log.warning(
            "database unavailable",
            extra={"request_id": getattr(request.state, "request_id", None), "error": type(exc).__name__},
        )
        return error_response(
            503,
            "the database is unavailable; try again shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    # The classes a database outage surfaces as (through SQLAlchemy, the raw driver or the socket);
    # handled here, inside the request-id middleware, the 503 keeps the request id header.
    for cls in (DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(cls, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The request id is a short safe token (request_id_of), fit for the log and the body as it
        # is; the answer's X-Request-ID header is the same (RequestIdMiddleware wraps this 500 too).
        request_id = getattr(request.state, "request_id", None)
        log.exception("unhandled error", extra={"request_id": request_id})
        return error_response(
            500, f"internal error; request id {request_id} identifies it in the logs", code="internal"
        )


def request_id_of(presented: str | None) -> str:
    """The client's ``X-Request-ID`` if it is a short safe token, else a fresh one."""
    if presented and _SAFE_REQUEST_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


RequestGuard = Callable[[Request], Response | None]
"""Runs before routing; a response it returns is the answer (e.g. a path the app refuses)."""


class RequestIdMiddleware:
    """The request id and the request metrics of every answer, a 500 included, as a plain ASGI
    middleware around the whole built stack (:func:`install_request_id`).

    Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``) runs the app in a task of
    its own and relays the answer through a memory stream: a large share of a cheap request's
    CPU (docs/performance.md, "The gateway hop"). This one only wraps ``send``.
    """

    def __init__(self, app: ASGIApp, *, app_name: str) -> None:
        self.app = app
        self.app_name = app_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
        # In the scope's state, which every Request of this request shares: the routes, the
        # error handlers (the 500's log line and body) and the gateway's forwarding read it there.
        request.state.request_id = request_id
        method = scope["method"]
        started = time.perf_counter()
        timed = False

        async def send_with_id(message: Message) -> None:
            nonlocal timed
            if message["type"] == "http.response.start":
                # The latency is the time to the answer's head (an event stream stays open).
                HTTP_LATENCY.labels(self.app_name, method).observe(time.perf_counter() - started)
                timed = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                HTTP_REQUESTS.labels(self.app_name, method, str(message["status"])).inc()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not timed:
                HTTP_LATENCY.labels(self.app_name, method).observe(time.perf_counter() - started)


class GuardMiddleware:
    """Runs the app's :data:`RequestGuard` before routing. Added with ``add_middleware``, so it
    sits inside Starlette's error handling: a guard that fails answers the usual 500 body."""

    def __init__(self, app: ASGIApp, *, guard: RequestGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.guard(Request(scope, receive))
        if refused is not None:
            await refused(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def without_body(send: Send) -> Send:
    """``send`` for a HEAD: the answer's start, its ``Content-Length`` kept (RFC 9110 §8.6,
    §9.3.2), then at once its end; whatever the app sends after is dropped.

    At once, not at the app's first body message: a stream (the dashboard's live refresh) may
    send none for a long time, and an answer not ended holds its keep-alive connection — one of
    the gateway's pool, the next request on it waiting behind. Once ended, the server reports the
    client gone to the app's ``receive``, and a stream stops."""
    ended = False

    async def send_head(message: Message) -> None:
        nonlocal ended
        if ended:
            return
        if message["type"] == "http.response.start":
            await send(message)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            ended = True
        else:  # an app that sends no start: passed on as it is, the server decides
            await send(message)

    return send_head


class HeadLikeGet:
    """HEAD on a path whose routes take GET but not HEAD is that GET without its body.

    RFC 9110 §9.1: a server that takes GET takes HEAD. Starlette's routes add HEAD to GET
    themselves; FastAPI's (every route of ours) do not, so a HEAD — a monitor's, a link checker's
    — was a 405. Done here rather than by adding HEAD to the routes: that would put a ``head``
    operation beside every ``get`` of the OpenAPI document. A route that takes HEAD itself (the
    gateway's forwarding) gets it unchanged. Only HEAD pays the routing check.
    """

    def __init__(self, app: ASGIApp, *, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD" and self._get_only(scope):
            await self.app({**scope, "method": "GET"}, receive, without_body(send))
            return
        await self.app(scope, receive, send)

    def _get_only(self, scope: Scope) -> bool:
        def taken(method: str) -> bool:
            return any(route.matches({**scope, "method": method})[0] is Match.FULL for route in self.router.routes)

        return not taken("HEAD") and taken("GET")


def wrap_whole_stack(app: Starlette, wrapper: Callable[[ASGIApp], ASGIApp]) -> None:
    """Wrap ``app``'s whole middleware stack in ``wrapper``, so it sees every answer, a 500 included.

    Starlette answers an unhandled error in ``ServerErrorMiddleware``, which it puts outside
    every middleware added with ``add_middleware`` (and the tracing wraps that in one more):
    what such a middleware does to an answer never reached that one. The stack is built on the
    first call, after every middleware and handler is known; this wraps what is built then, as the
    tracing does, and ``app`` stays the object that ``uvicorn --factory`` and the tests take.
    Call it after ``FastAPIInstrumentor.instrument_app``, which expects to find Starlette's own
    stack (it skips the tracing otherwise); each later call wraps the earlier ones.
    """
    build = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return wrapper(build())

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]


def install_request_id(app: FastAPI, app_name: str, guard: RequestGuard | None = None) -> None:
    """Request ids and request metrics on every answer; ``guard`` before routing.

    The id is decided outside the whole stack (:func:`wrap_whole_stack`): a 500 carries the id
    that its body and the error's log line name, and is counted by status like any answer. The
    guard stays inside the error handling (:class:`GuardMiddleware`)."""
    if guard is not None:
        app.add_middleware(GuardMiddleware, guard=guard)
    wrap_whole_stack(app, lambda stack: RequestIdMiddleware(stack, app_name=app_name))


ReadyCheck = Callable[[], Awaitable[bool]]


def install_health(
    app: FastAPI,
    checks: Mapping[str, ReadyCheck],
    metrics_allowed: Callable[[Request], bool] | None = None,
    own_checks: Mapping[str, ReadyCheck] | None = None,
) -> None:
    """``/healthz`` (alive), ``/readyz`` (``checks``) and, with ``own_checks``, ``/readyz/self``:
    ready as far as this process alone goes, for a pod's readiness probe where ``/readyz`` also
    checks what the process merely reaches (the gateway's: the broker and every service)."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def ready_route(path: str, checks: Mapping[str, ReadyCheck]) -> None:
        @app.get(path, include_in_schema=False)
        async def readyz() -> JSONResponse:
            results = {name: await check() for name, check in checks.items()}
            status = 200 if all(results.values()) else 503
            return JSONResponse(
                {"status": "ready" if status == 200 else "not ready", "checks": results}, status_code=status
            )

    ready_route("/readyz", checks)
    if own_checks is not None:
        ready_route("/readyz/self", own_checks)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if metrics_allowed is not None and not metrics_allowed(request):
            return error_response(404, "no such path")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app(
    name: str,
    *,
    title: str,
    checks: Mapping[str, ReadyCheck],
    lifespan: Any = None,
    description: str = "",
    guard: RequestGuard | None = None,
    metrics_allowed: Callable[[Request], bool] | None = None,
    own_checks: Mapping[str, ReadyCheck] | None = None,
) -> FastAPI:
    """A FastAPI app with SQI's error body, request ids, health, metrics and tracing; what is
    alive once its ``lifespan`` has started is frozen out of the collector's reach (shared.heap)."""
    app = FastAPI(
        title=title, description=description, lifespan=_frozen_after_start(lifespan), docs_url=None, redoc_url=None
    )
    install_error_handlers(app)
    app.add_middleware(HeadLikeGet, router=app.router)
    install_health(app, checks, metrics_allowed, own_checks)
    # One server span per request; not one more internal span per ASGI message sent or received
    # (three for a plain GET): they told nothing the server span does not, at a tenth of a
    # proxied read's CPU in the gateway (docs/performance.md, "The gateway hop").
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"])
    install_request_id(app, name, guard)  # after the tracing: it wraps the whole stack the tracing built
    return app


def _frozen_after_start(lifespan: Any) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def started(app: FastAPI) -> AsyncIterator[None]:
        if lifespan is None:
            freeze_startup_heap()
            yield
            return
        async with lifespan(app):
            freeze_startup_heap()
            yield

    return started


async def principal_from(request: Request) -> Principal:
    """The caller as the gateway verified it (anonymous if the request did not come through it).

    Dependencies are ``async def`` even where they await nothing: FastAPI runs a plain ``def``
    dependency in its thread pool, a hand-off that cost the ingest API a tenth of its CPU per
    request under the live bench (py-spy) for work that takes microseconds."""
    expected = request.app.state.internal_token
    return decode_principal(request.headers.get(PRINCIPAL_HEADER), request.headers.get(INTERNAL_TOKEN_HEADER), expected)


def client_address(request: Request) -> str:
    """The client address the gateway saw; trusted only with the internal token, else the peer.

    Without the check anyone who reaches a service directly could name any address and
    escape the per-address limits (or frame another address).
    """
    forwarded = request.headers.get(CLIENT_ADDRESS_HEADER)
    if forwarded and from_gateway(request.headers.get(INTERNAL_TOKEN_HEADER), request.app.state.internal_token):
        return forwarded
    return request.client.host if request.client else "unknown"


CurrentPrincipal = Annotated[Principal, Depends(principal_from)]


async def require_integrator(principal: CurrentPrincipal) -> Principal:
    if principal.kind != "integrator":
        raise ApiError(401, "an integrator API key is required")
    return principal


async def require_staff(principal: CurrentPrincipal) -> Principal:
    if not principal.is_staff:
        raise ApiError(401, "a staff token is required")
    return principal


async def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_staff:
        raise ApiError(401, "a staff token is required")
    if not principal.is_admin:
        raise ApiError(403, "the admin role is required")
    return principal


Integrator = Annotated[Principal, Depends(require_integrator)]
Staff = Annotated[Principal, Depends(require_staff)]
Admin = Annotated[Principal, Depends(require_admin)]
