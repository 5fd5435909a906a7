"""Public pages (no JS needed): rate a dossier, file a petition, follow it.

Forms post back here; errors re-render the form with an error summary linking to the fields;
success answers 303 to a confirmation. The access code travels in an encrypted, short-lived,
HttpOnly cookie, never in a URL (URLs end up in logs and browser history).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from services.feedback.adapters import repository
from services.feedback.api import schemas as s
from services.feedback.api.deps import App, access_guard
from services.feedback.api.i18n import TEXTS, pick
from services.feedback.api.routes import file, rate
from services.feedback.api.views import citizen_view
from services.feedback.domain.categories import CATEGORIES
from services.feedback.handlers import petitions
from shared.calendar import VN_TZ, local_date
from shared.urls import page_path, segment
from shared.web import ApiError

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

HONEYPOT = "website"  # hidden from people (CSS + aria-hidden); bots fill it
COOKIE = "sqi_pakn"
COOKIE_TTL = 1800
Lang = Annotated[str | None, Query(max_length=5)]


def _date(value: datetime | None, *, deadline: bool = False) -> str:
    if value is None:
        return ""
    local = value.astimezone(VN_TZ)
    if deadline:
        # A computed deadline is the next local midnight: show the working day it ends.
        local -= timedelta(seconds=1)
    return local.strftime("%d/%m/%Y")


def _url(path: str, lang: str, **params: str) -> str:
    query = {**({"lang": lang} if lang != "vi" else {}), **params}
    return f"{path}?{urlencode(query)}" if query else path


def render(request: Request, name: str, lang: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    t = TEXTS[lang]
    other = "en" if lang == "vi" else "vi"
    switch_url = _url(page_path(request), other, **{k: v for k, v in request.query_params.items() if k != "lang"})
    return templates.TemplateResponse(
        request,
        name,
        {"t": t, "lang": lang, "switch_url": switch_url, "url": lambda p, **q: _url(p, lang, **q), "fmt": _date, **ctx},
        status_code=status,
    )


CHOICES = ("level", "category", "reaction", "unit_code")  # radio groups and selects: "choose", not "enter"


def form_errors(exc: ValidationError, t: dict[str, str]) -> list[dict[str, str]]:
    """Pydantic errors as ``[{field, message}]`` in the page's language."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        field = loc[0] if loc else "form"
        if field == "criteria" and len(loc) > 1:
            field = f"criteria-{loc[1]}"
        label = t.get(field if not field.startswith("criteria") else "criteria", field).split(" (")[0]
        kind = err["type"]
        if field in CHOICES and kind in ("missing", "literal_error", "value_error", "string_too_short"):
            key = "err_choose"
        elif kind == "missing" or (kind == "string_too_short" and err.get("ctx", {}).get("min_length") == 1):
            key = "err_required"
        elif kind == "string_too_long":
            key = "err_too_long"
        elif kind == "string_too_short":
            key = "err_too_short"
        else:
            key = "err_invalid"
        out.append({"field": field, "message": t[key].format(field=label.lower() if key != "err_too_long" else label)})
    return out


def _clean(form: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in form.items() if v not in ("", None)}


async def _form(request: Request) -> dict[str, Any]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


# ---- ratings --------------------------------------------------------------------------------


@router.get("/rate", response_class=HTMLResponse)
async def rate_page(request: Request, app: App, lang: Lang = None, d: str = "", c: str = "") -> HTMLResponse:
    lang = pick(lang)
    return render(
        request,
        "rate.html",
        lang,
        form={"dossier_id": d[:128], "rating_code": c[:32]},
        errors=[],
        criteria=app.criteria,
    )


@router.post("/rate", response_class=HTMLResponse)
async def rate_submit(request: Request, app: App, lang: Lang = None) -> Response:
    lang = pick(lang)
    t = TEXTS[lang]
    form = await _form(request)
    if form.get(HONEYPOT):
        return RedirectResponse(_url("/rate/thanks", lang), status_code=303)
    criteria = {k.removeprefix("criteria-"): v for k, v in form.items() if k.startswith("criteria-") and v}
    payload = {
        **_clean({k: form.get(k) for k in ("dossier_id", "rating_code", "level", "comment")}),
        "criteria": criteria,
    }
    errors: list[dict[str, str]] = []
    status = 422
    try:
        body = s.RatingIn.model_validate(payload)
        answer = await rate(body, app)
        return RedirectResponse(
            _url("/rate/thanks", lang, **({"replaced": "1"} if answer.replaced else {})), status_code=303
        )
    except ValidationError as exc:
        errors = form_errors(exc, t)
    except ApiError as exc:
        status = exc.status
        if exc.status == 423:
            errors = [{"field": "rating_code", "message": t["err_locked"]}]
        elif exc.status == 403:
            errors = [{"field": "rating_code", "message": t["err_code"]}]
        else:
            errors = [
                {
                    "field": str(d.get("field", "form")).replace(".", "-"),
                    "message": t["err_invalid"].format(field=t["criteria"].split(" (")[0].lower()),
                }
                for d in exc.details
            ]
    return render(request, "rate.html", lang, status, form=form, errors=errors, criteria=app.criteria)


@router.get("/rate/thanks", response_class=HTMLResponse)
async def rate_thanks(request: Request, lang: Lang = None, replaced: str = "") -> HTMLResponse:
    return render(request, "rate_done.html", pick(lang), replaced=replaced == "1")


# ---- petitions ------------------------------------------------------------------------------


async def _units(app: Any) -> list[Any]:
    async with app.uow() as uow:
        rows = await repository.open_units(uow.session, local_date(datetime.now(VN_TZ)))
    return [r for r in rows if r.level != "central"]


async def _petition_form(
    request: Request,
    app: Any,
    lang: str,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: list[dict[str, str]] | None = None,
    follow: dict[str, Any] | None = None,
    follow_errors: list[dict[str, str]] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "petition.html",
        lang,
        status,
        form=form or {},
        errors=errors or [],
        units=await _units(app),
        categories=CATEGORIES,
        follow=follow or {},
        follow_errors=follow_errors or [],
    )


@router.get("/petition", response_class=HTMLResponse)
async def petition_page(request: Request, app: App, lang: Lang = None) -> HTMLResponse:
    return await _petition_form(request, app, pick(lang))


def _with_cookie(response: Response, app: Any, petition_id: str, access_code: str) -> Response:
    response.set_cookie(
        COOKIE,
        app.sealer.seal(f"{petition_id}:{access_code}").decode(),
        max_age=COOKIE_TTL,
        path="/petition",
        httponly=True,
        samesite="strict",
        secure=app.settings.cookie_secure,
    )
    return response


def _from_cookie(request: Request, app: Any, petition_id: str) -> str | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    opened = app.sealer.open(token.encode(), ttl=COOKIE_TTL)
    if opened is None or ":" not in opened:
        return None
    pid, code = opened.split(":", 1)
    return code if pid == petition_id else None


@router.post("/petition", response_class=HTMLResponse)
async def petition_submit(request: Request, app: App, lang: Lang = None) -> Response:
    lang = pick(lang)
    t = TEXTS[lang]
    form = await _form(request)
    if form.get(HONEYPOT):
        return RedirectResponse(_url("/petition/received", lang), status_code=303)
    payload = _clean({k: form.get(k) for k in ("unit_code", "dossier_id", "category", "title", "content", "contact")})
    try:
        body = s.PetitionIn.model_validate(payload)
        created = await file(body, request, app)
    except ValidationError as exc:
        return await _petition_form(request, app, lang, status=422, form=form, errors=form_errors(exc, t))
    except ApiError as exc:
        if exc.status == 409:
            errors = [{"field": "title", "message": t["err_duplicate"]}]
        else:
            errors = [{"field": "unit_code", "message": t["err_choose"].format(field=t["unit"].lower())}]
        return await _petition_form(request, app, lang, status=exc.status, form=form, errors=errors)
    response = RedirectResponse(_url(f"/petition/{created.petition_id}", lang, new="1"), status_code=303)
    return _with_cookie(response, app, created.petition_id, created.access_code)


@router.get("/petition/received", response_class=HTMLResponse)
async def petition_received(request: Request, lang: Lang = None) -> HTMLResponse:
    return render(request, "petition_received.html", pick(lang))


@router.post("/petition/follow", response_class=HTMLResponse)
async def petition_follow(request: Request, app: App, lang: Lang = None) -> Response:
    lang = pick(lang)
    t = TEXTS[lang]
    form = await _form(request)
    petition_id = form.get("petition_id", "").strip().upper()[:32]
    code = form.get("access_code", "").strip().upper()[:32]
    errors = []
    locked = False
    if not petition_id:
        errors.append({"field": "petition_id", "message": t["err_required"].format(field=t["petition_id"].lower())})
    if not code:
        errors.append({"field": "access_code", "message": t["err_required"].format(field=t["access_code"].lower())})
    if not errors:
        try:
            async with app.uow() as uow:
                await petitions.citizen_petition(uow, petition_id, code, access_guard(request, app))
        except ApiError as exc:
            locked = exc.status == 423
            errors.append({"field": "access_code", "message": t["err_locked"] if locked else t["err_not_found"]})
    if errors:
        status = 423 if locked else 404 if len(errors) == 1 and code else 422
        return await _petition_form(request, app, lang, status=status, follow=form, follow_errors=errors)
    return _with_cookie(
        RedirectResponse(_url(f"/petition/{petition_id}", lang), status_code=303), app, petition_id, code
    )


@router.get("/petition/{petition_id}", response_class=HTMLResponse)
async def petition_status(request: Request, petition_id: str, app: App, lang: Lang = None, new: str = "") -> Response:
    lang = pick(lang)
    code = _from_cookie(request, app, petition_id)
    if code is None:
        return render(request, "petition_follow.html", lang, follow={"petition_id": petition_id}, follow_errors=[])
    try:
        async with app.uow() as uow:
            row = await petitions.citizen_petition(uow, petition_id, code, access_guard(request, app))
    except ApiError:
        return render(request, "petition_follow.html", lang, follow={"petition_id": petition_id}, follow_errors=[])
    return render(request, "petition_status.html", lang, p=citizen_view(row), access_code=code if new == "1" else None)


@router.post("/petition/{petition_id}/reaction", response_class=HTMLResponse)
async def petition_reaction(request: Request, petition_id: str, app: App, lang: Lang = None) -> Response:
    lang = pick(lang)
    code = _from_cookie(request, app, petition_id)
    reaction = (await _form(request)).get("reaction")
    if code is not None and reaction in ("like", "dislike"):
        try:
            async with app.uow() as uow:
                await petitions.react(
                    petition_id, code, reaction, uow=uow, guard=access_guard(request, app), now=datetime.now(VN_TZ)
                )
        except ApiError:
            pass  # not published yet, or the cookie expired: the status page says which
    return RedirectResponse(_url(f"/petition/{segment(petition_id)}", lang), status_code=303)
