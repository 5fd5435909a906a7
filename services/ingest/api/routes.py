"""Ingest's HTTP routes: thin — parse, call a handler, shape the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from services.ingest import handlers, units
from services.ingest.adapters import repository
from services.ingest.adapters.tables import feed_day, feed_reason
from services.ingest.api.parsing import parse_events_body
from services.ingest.api.schemas import (
    FeedStatus,
    IngestAnswer,
    RatingCodeAnswer,
    ReplayIn,
    ReplayOut,
    UnitIn,
    UnitOut,
)
from services.ingest.bootstrap import Ingest
from services.ingest.domain import reasons
from services.ingest.replay import replay_status, request_replay
from shared.metrics import EVENTS, EVENTS_REJECTED
from shared.rating_code import is_rateable_dossier_id
from shared.text import CONTROL
from shared.unit_tree import covers
from shared.web import Admin, ApiError, CurrentPrincipal, Integrator


async def plain_path(request: Request) -> None:
    """A control character in a path parameter is the caller's error (422), never a 500."""
    bad = [name for name, value in request.path_params.items() if CONTROL.search(str(value))]
    if bad:
        raise ApiError(
            422,
            "the path is not valid",
            details=[{"field": name, "reason": reasons.CONTROL.text} for name in bad],
        )


router = APIRouter(prefix="/api/v1", dependencies=[Depends(plain_path)])


async def get_app(request: Request) -> Ingest:
    return request.app.state.ingest


App = Annotated[Ingest, Depends(get_app)]

EVENTS_DOC = """Send events: one JSON object, a JSON array, or NDJSON (`application/x-ndjson`).

Up to 10,000 events or 10 MB. Every record is checked on its own: the answer lists the
rejected ones with `{index, event_id, errors: [{field, reason}]}` and the others are stored.
Resending is safe: an event already accepted counts as a duplicate; the same id with a
different body is rejected as a conflict and the first version stays."""


@router.post(
    "/events",
    response_model=IngestAnswer,
    summary="Send events (gửi sự kiện)",
    description=EVENTS_DOC,
    responses={401: {}, 403: {}, 413: {}, 422: {"model": IngestAnswer}},
)
async def post_events(request: Request, app: App, principal: Integrator) -> Response:
    settings = app.settings
    body = await request.body()
    if len(body) > settings.ingest_max_bytes:
        raise ApiError(413, f"the body exceeds {settings.ingest_max_bytes} bytes; split it into smaller batches")
    records = parse_events_body(body, request.headers.get("content-type", ""))
    if len(records) > settings.ingest_max_events:
        raise ApiError(413, f"at most {settings.ingest_max_events} events per request; got {len(records)}")
    names = {
        str(r.get("data", {}).get(k))
        for r in records
        if isinstance(r, dict) and isinstance(r.get("data"), dict)
        for k in ("unit_code", "to_unit_code")
        if r["data"].get(k) is not None
    }
    procedures = {
        str(r["data"]["procedure_code"])
        for r in records
        if isinstance(r, dict)
        and r.get("type") == "dossier.received"
        and isinstance(r.get("data"), dict)
        and r["data"].get("procedure_code") is not None
    }
    # A code this replica has not seen yet (another one may just have stored it) reloads the cache.
    reference = await app.reference.get(units=names, procedures=procedures)
    now = datetime.now(UTC)
    async with app.uow() as uow:
        result = await handlers.ingest_events(
            records,
            principal=principal,
            uow=uow,
            reference=reference,
            rating_codes=app.rating_codes,
            now=now,
            future_tolerance=timedelta(hours=settings.ingest_future_tolerance_hours),
            message_batch=settings.ingest_message_batch,
        )
    _observe(principal.source or "", result)
    status = 200
    if records and len(result.rejected) == len(records):
        status = 403 if result.all_forbidden else 422
    # orjson: the same compact UTF-8 JSON as JSONResponse, without the stdlib encoder's cost
    # on answers carrying thousands of rating codes.
    return Response(orjson.dumps(result.as_json()), status_code=status, media_type="application/json")


def _observe(source: str, result: handlers.IngestResult) -> None:
    """One increment per outcome and per reason label for the whole request, not per event."""
    for outcome, count in (
        ("accepted", result.accepted),
        ("duplicate", result.duplicates),
        ("rejected", len(result.rejected)),
    ):
        if count:
            EVENTS.labels(source=source, outcome=outcome).inc(count)
    for label, count in result.reason_labels.items():
        EVENTS_REJECTED.labels(source=source, reason=label).inc(count)


@router.get(
    "/dossiers/{dossier_id}/rating-code",
    response_model=RatingCodeAnswer,
    summary="Reprint a dossier's rating code (mã đánh giá)",
)
async def rating_code(dossier_id: str, app: App, principal: Integrator) -> RatingCodeAnswer:
    if not is_rateable_dossier_id(dossier_id):
        raise ApiError(
            422,
            "the dossier id is not valid",
            details=[{"field": "dossier_id", "reason": reasons.DOSSIER_ID.text}],
        )
    async with app.uow() as uow:
        unit_code = await repository.dossier_unit(uow.session, dossier_id)
    reference = await app.reference.get()
    if unit_code is None or not covers(reference.parents, principal.units, unit_code):
        # The same answer for "unknown" and "not yours": no way to probe other units' dossiers.
        raise ApiError(404, "no dossier with this id among the units this key reports for")
    return RatingCodeAnswer(dossier_id=dossier_id, rating_code=app.rating_codes.issue(dossier_id, unit_code))


@router.get("/units", response_model=list[UnitOut], summary="The unit tree (cây đơn vị)")
async def get_units(app: App) -> list[dict[str, Any]]:
    async with app.uow() as uow:
        return await units.list_units(uow)


@router.put("/units/{code}", response_model=UnitOut, summary="Create or change a unit (admin)")
async def put_unit(code: str, body: UnitIn, app: App, _: Admin) -> JSONResponse:
    async with app.uow() as uow:
        row, created = await units.put_unit(code, body.model_dump(), uow=uow)
    app.reference.invalidate()
    return JSONResponse(UnitOut.model_validate(row).model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/feeds", response_model=list[FeedStatus], summary="Feed freshness per source")
async def get_feeds(app: App, principal: CurrentPrincipal) -> list[FeedStatus]:
    if principal.kind == "integrator":
        sources = [principal.source]
    elif principal.is_admin:
        sources = None
    else:
        raise ApiError(401 if principal.kind == "anonymous" else 403, "an integrator key or the admin role is required")
    today = datetime.now(handlers.VN).date()
    async with app.uow() as uow:
        query = select(feed_day).where(feed_day.c.day == today)
        latest = (
            select(feed_day.c.source, feed_day.c.last_event_at, feed_day.c.last_request_at)
            .distinct(feed_day.c.source)
            .order_by(feed_day.c.source, feed_day.c.day.desc())
        )
        reasons_q = select(feed_reason).where(feed_reason.c.day == today).order_by(feed_reason.c.count.desc())
        if sources is not None:
            query = query.where(feed_day.c.source.in_(sources))
            latest = latest.where(feed_day.c.source.in_(sources))
            reasons_q = reasons_q.where(feed_reason.c.source.in_(sources))
        today_rows = {r.source: r for r in (await uow.session.execute(query)).all()}
        reasons: dict[str, list[dict[str, object]]] = {}
        for r in (await uow.session.execute(reasons_q)).all():
            reasons.setdefault(r.source, []).append({"reason": r.reason, "count": r.count})
        out = []
        for r in (await uow.session.execute(latest)).all():
            t = today_rows.get(r.source)
            out.append(
                FeedStatus(
                    source=r.source,
                    last_event_at=r.last_event_at,
                    last_request_at=r.last_request_at,
                    events_today=t.accepted if t else 0,
                    duplicates_today=t.duplicates if t else 0,
                    rejected_today=t.rejected if t else 0,
                    top_rejection_reasons=reasons.get(r.source, [])[:5],
                )
            )
    return out


@router.post(
    "/replays",
    response_model=ReplayOut,
    status_code=202,
    summary="Replay the raw log to one consumer (admin)",
    description="Records a replay job; the ingest worker streams the log to the consumer's "
    "`replay.<consumer>` routing key and ends with a ReplayFinished message. Follow it with GET.",
)
async def post_replay(body: ReplayIn, app: App, principal: Admin) -> ReplayOut:
    async with app.uow() as uow:
        replay_id = await request_replay(
            consumer=body.consumer,
            occurred_from=body.occurred_from,
            occurred_to=body.occurred_to,
            requested_by=principal.sub,
            uow=uow,
        )
    return ReplayOut(replay_id=replay_id, consumer=body.consumer, status="pending", events=0, batches=0)


@router.get("/replays/{replay_id}", response_model=ReplayOut, summary="A replay's progress (admin)")
async def get_replay(replay_id: str, app: App, _: Admin) -> ReplayOut:
    async with app.uow() as uow:
        job = await replay_status(replay_id, uow=uow)
    if job is None:
        raise ApiError(404, "no replay with this id")
    return ReplayOut(
        replay_id=replay_id,
        consumer=job["consumer"],
        status=job["status"],
        events=job["events"],
        batches=job["messages"],
        error=job["error"],
    )
