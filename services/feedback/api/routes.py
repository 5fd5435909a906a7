"""Feedback's JSON routes: thin — parse, call a handler, shape the answer."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from services.feedback.adapters import repository
from services.feedback.adapters.tables import dossier_unit, rating
from services.feedback.api import schemas as s
from services.feedback.api.deps import App, access_guard, client_address, lock_policy, now
from services.feedback.api.views import citizen_view, staff_view
from services.feedback.domain.petition import Action
from services.feedback.domain.ratings import EARLIEST_RATING, criteria_errors
from services.feedback.handlers import petitions, ratings
from shared.unit_tree import covers, subtree
from shared.web import ApiError, CurrentPrincipal, Integrator, Staff

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")

CITIZEN_MAX_BYTES = 16 * 1024
WRONG_CODE = "the dossier id or the rating code is not correct"
FUTURE_TOLERANCE = timedelta(days=1)
LOCKED = "too many wrong rating codes for this dossier id; try again later"


async def limit_body(request: Request) -> None:
    """Citizen payloads are small; the gateway enforces it too, this guards direct calls."""
    if len(await request.body()) > CITIZEN_MAX_BYTES:
        raise ApiError(413, f"the body exceeds {CITIZEN_MAX_BYTES} bytes")


SmallBody = Depends(limit_body)


async def rate(body: s.RatingIn, app: App) -> s.RatingOut:
    """Shared by the API and the HTML form: raises ApiError 403/423/422, else the new rating."""
    errors = criteria_errors(body.criteria, app.criteria_by_id)
    if errors:
        raise ApiError(422, "the request is not valid", details=errors)
    new = ratings.NewRating(
        dossier_id=body.dossier_id,
        level=body.level,
        criteria=dict(body.criteria),
        comment=body.comment or None,
        origin=ratings.CITIZEN,
        rated_at=now(),
    )
    async with app.uow() as uow:
        outcome = await ratings.submit_rating(
            new, body.rating_code, uow=uow, codes=app.rating_codes, now=new.rated_at, policy=lock_policy(app)
        )
    # Raised after the commit: a wrong code must still count towards the lockout.
    if outcome.result == "denied":
        log.info("rating refused: wrong code")
        raise ApiError(403, WRONG_CODE)
    if outcome.result == "locked":
        log.info("rating refused: locked")
        raise ApiError(423, LOCKED)
    assert outcome.recorded is not None
    return s.RatingOut(
        rating_id=outcome.recorded.rating_id,
        dossier_id=body.dossier_id,
        level=body.level,
        replaced=outcome.recorded.replaced,
    )


@router.post(
    "/ratings",
    status_code=201,
    response_model=s.RatingOut,
    summary="Rate a handled dossier (đánh giá mức độ hài lòng)",
    description="Proven by the receipt's rating code. A wrong code and an unknown dossier get the same 403; "
    "after 5 wrong codes for one dossier id its rating is locked for an hour (423, for any id alike). "
    "A new rating of the same dossier replaces the current one; the history is kept.",
    responses={403: {}, 413: {}, 422: {}, 423: {}},
    dependencies=[SmallBody],
)
async def post_rating(body: s.RatingIn, app: App) -> s.RatingOut:
    return await rate(body, app)


_imports = TypeAdapter(list[dict[str, Any]])
_imported = TypeAdapter(s.ImportedRating)


@router.post(
    "/ratings/import",
    response_model=s.ImportAnswer,
    summary="Import ratings collected elsewhere (integrator)",
    description="A JSON array of `{dossier_id, level, criteria?, rated_at, origin}`; every record is checked on "
    "its own and rejected ones are listed as `{index, dossier_id, errors: [{field, reason}]}`. Sending the same "
    "record again (same origin, dossier and rated_at) counts as a duplicate; with another level, "
    "criteria or comment it is rejected as a conflict (the first version stays). The origin `citizen` is "
    "the citizens' own channel and is refused.",
    responses={422: {"model": s.ImportAnswer}, 413: {}},
)
async def import_ratings(request: Request, app: App, principal: Integrator) -> JSONResponse:
    try:
        raw = _imports.validate_json(await request.body())
    except ValidationError as exc:
        raise ApiError(422, "the body must be a JSON array of objects") from exc
    if len(raw) > app.settings.feedback_import_max_records:
        raise ApiError(413, f"at most {app.settings.feedback_import_max_records} ratings per request")
    valid: list[tuple[int, ratings.NewRating]] = []
    rejected: list[dict[str, Any]] = []
    for index, record in enumerate(raw):
        try:
            item = _imported.validate_python(record)
        except ValidationError as exc:
            errs = [{"field": ".".join(str(p) for p in e["loc"]) or "record", "reason": e["msg"]} for e in exc.errors()]
            rejected.append({"index": index, "dossier_id": record.get("dossier_id"), "errors": errs})
            continue
        errs = criteria_errors(item.criteria, app.criteria_by_id)
        if item.rated_at > now() + FUTURE_TOLERANCE:
            errs.append({"field": "rated_at", "reason": "more than a day in the future"})
        elif item.rated_at < EARLIEST_RATING:
            errs.append(
                {"field": "rated_at", "reason": f"before {EARLIEST_RATING.date()}: SQI keeps no ratings that old"}
            )
        if item.origin == ratings.CITIZEN:
            # The citizens' own channel (POST /api/v1/ratings, with the dossier's rating code): an
            # import never speaks for it, and a rating passed off as theirs would share its keys.
            errs.append({"field": "origin", "reason": f"'{ratings.CITIZEN}' is the citizens' own channel"})
        if errs:
            rejected.append({"index": index, "dossier_id": item.dossier_id, "errors": errs})
            continue
        valid.append(
            (
                index,
                ratings.NewRating(item.dossier_id, item.level, dict(item.criteria), None, item.origin, item.rated_at),
            )
        )
    async with app.uow() as uow:
        result = await ratings.import_ratings(valid, principal=principal, uow=uow)
    result.rejected = sorted(rejected + result.rejected, key=lambda r: int(r["index"]))
    status = 422 if raw and len(result.rejected) == len(raw) else 200
    return JSONResponse(result.as_json(), status_code=status)


@router.get("/ratings", response_model=list[s.StaffRating], summary="Current ratings of a unit, with comments (staff)")
async def list_ratings(
    app: App,
    principal: Staff,
    unit: Annotated[s.UnitCode | None, Query(max_length=64)] = None,
    level: s.Level | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=s.MAX_OFFSET)] = 0,
) -> list[s.StaffRating]:
    async with app.uow() as uow:
        parents = await repository.unit_parents(uow.session)
        root = unit or principal.unit
        if root is None or (
            not principal.is_admin and (principal.unit is None or not covers(parents, [principal.unit], root))
        ):
            raise ApiError(403, "this unit is outside yours")
        query = (
            select(rating, dossier_unit.c.unit_code)
            .join(dossier_unit, dossier_unit.c.dossier_id == rating.c.dossier_id)
            .where(dossier_unit.c.unit_code.in_(subtree(parents, root)))
        )
        if level:
            query = query.where(rating.c.level == level)
        rows = (await uow.session.execute(query.order_by(rating.c.rated_at.desc()).limit(limit).offset(offset))).all()
    return [s.StaffRating.model_validate(r._mapping) for r in rows]


@router.post(
    "/petitions",
    status_code=201,
    response_model=s.PetitionCreated,
    summary="File a petition (gửi phản ánh, kiến nghị)",
    description="Answers the petition id and an access code to follow it; keep both. The same petition sent "
    "again from the same address within a minute is refused (409).",
    responses={409: {}, 413: {}, 422: {}},
    dependencies=[SmallBody],
)
async def post_petition(body: s.PetitionIn, request: Request, app: App) -> s.PetitionCreated:
    return await file(body, request, app)


async def file(body: s.PetitionIn, request: Request, app: App) -> s.PetitionCreated:
    new = petitions.NewPetition(
        unit_code=body.unit_code,
        dossier_id=body.dossier_id or None,
        category=body.category,
        title=body.title,
        content=body.content,
        contact=body.contact or None,
    )
    async with app.uow() as uow:
        petition_id, access_code = await petitions.file_petition(
            new,
            uow=uow,
            calendar=app.calendar,
            sealer=app.sealer,
            client_address=client_address(request),
            now=now(),
            duplicate_window=timedelta(seconds=app.settings.feedback_duplicate_window_s),
        )
    log.info("petition received", extra={"petition_id": petition_id, "unit_code": body.unit_code})
    return s.PetitionCreated(petition_id=petition_id, access_code=access_code)


@router.get(
    "/petitions",
    response_model=s.PetitionPage,
    summary="Petitions of a unit and its subtree (staff)",
)
async def list_petitions(
    app: App,
    principal: Staff,
    unit: Annotated[s.UnitCode | None, Query(max_length=64)] = None,
    status: Annotated[s.Name | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=s.MAX_OFFSET)] = 0,
) -> s.PetitionPage:
    async with app.uow() as uow:
        total, rows = await petitions.list_for_staff(
            uow, principal, unit_code=unit, status=status, limit=limit, offset=offset
        )
    return s.PetitionPage(total=total, items=[staff_view(r, app.sealer) for r in rows])


@router.get(
    "/petitions/{petition_id}",
    response_model=s.CitizenPetition | s.StaffPetition,
    summary="Follow a petition (theo dõi PAKN)",
    description="Citizens give `access_code`; staff of the petition's unit see the full record without it.",
)
async def get_petition(
    petition_id: s.PetitionIdPath,
    request: Request,
    app: App,
    principal: CurrentPrincipal,
    access_code: Annotated[s.Code | None, Query(max_length=32)] = None,
) -> s.CitizenPetition | s.StaffPetition:
    async with app.uow() as uow:
        if access_code is None and principal.is_staff:
            return staff_view(await petitions.staff_petition(uow, petition_id, principal), app.sealer)
        if access_code is None:
            raise ApiError(404, petitions.NOT_FOUND)
        return citizen_view(await petitions.citizen_petition(uow, petition_id, access_code, access_guard(request, app)))


@router.post(
    "/petitions/{petition_id}/reaction",
    response_model=s.CitizenPetition,
    summary="Like or dislike the published answer (one per petition, changeable)",
    responses={404: {}, 409: {}},
    dependencies=[SmallBody],
)
async def post_reaction(
    petition_id: s.PetitionIdPath, body: s.ReactionIn, request: Request, app: App
) -> s.CitizenPetition:
    async with app.uow() as uow:
        row = await petitions.react(
            petition_id, body.access_code, body.reaction, uow=uow, guard=access_guard(request, app), now=now()
        )
    return citizen_view(row)


@router.post(
    "/petitions/{petition_id}/information",
    response_model=s.CitizenPetition,
    summary="Give the information the unit asked for (bổ sung thông tin)",
    responses={404: {}, 409: {}},
    dependencies=[SmallBody],
)
async def post_information(
    petition_id: s.PetitionIdPath, body: s.InformationIn, request: Request, app: App
) -> s.CitizenPetition:
    async with app.uow() as uow:
        row = await petitions.add_information(
            petition_id,
            body.access_code,
            body.information,
            uow=uow,
            guard=access_guard(request, app),
            calendar=app.calendar,
            now=now(),
        )
    return citizen_view(row)


async def _staff(
    petition_id: str, action: Action, app: Any, principal: Any, *, text: str | None = None, to: str | None = None
) -> s.StaffPetition:
    async with app.uow() as uow:
        row = await petitions.staff_action(
            petition_id,
            action,
            principal=principal,
            uow=uow,
            calendar=app.calendar,
            now=now(),
            text_value=text,
            to_unit_code=to,
        )
    log.info("petition changed", extra={"petition_id": petition_id, "change": action.value})
    return staff_view(row, app.sealer)


STAFF_RESPONSES: dict[int | str, dict[str, Any]] = {401: {}, 403: {}, 404: {}, 409: {}}


@router.post("/petitions/{petition_id}/refuse", response_model=s.StaffPetition, responses=STAFF_RESPONSES)
async def refuse(petition_id: s.PetitionIdPath, body: s.RefuseIn, app: App, principal: Staff) -> s.StaffPetition:
    """Refuse to handle it (từ chối tiếp nhận), within 2 working days."""
    return await _staff(petition_id, Action.REFUSE, app, principal, text=body.reason)


@router.post("/petitions/{petition_id}/request-info", response_model=s.StaffPetition, responses=STAFF_RESPONSES)
async def request_info(
    petition_id: s.PetitionIdPath, body: s.QuestionIn, app: App, principal: Staff
) -> s.StaffPetition:
    """Ask the petitioner for more information, within 5 working days."""
    return await _staff(petition_id, Action.REQUEST_INFO, app, principal, text=body.question)


@router.post("/petitions/{petition_id}/answer", response_model=s.StaffPetition, responses=STAFF_RESPONSES)
async def answer(petition_id: s.PetitionIdPath, body: s.AnswerIn, app: App, principal: Staff) -> s.StaffPetition:
    """The answer is ready (within 15 working days); the citizen sees it once published."""
    return await _staff(petition_id, Action.ANSWER, app, principal, text=body.answer)


@router.post("/petitions/{petition_id}/publish", response_model=s.StaffPetition, responses=STAFF_RESPONSES)
async def publish(petition_id: s.PetitionIdPath, app: App, principal: Staff) -> s.StaffPetition:
    """Publish the answer (công khai), within 2 working days of it being ready."""
    return await _staff(petition_id, Action.PUBLISH, app, principal)


@router.post("/petitions/{petition_id}/transfer", response_model=s.StaffPetition, responses=STAFF_RESPONSES)
async def transfer(petition_id: s.PetitionIdPath, body: s.TransferIn, app: App, principal: Staff) -> s.StaffPetition:
    """Hand it to the competent unit (chuyển xử lý); its deadlines restart there."""
    return await _staff(petition_id, Action.TRANSFER, app, principal, to=body.to_unit_code)
