"""HTML pages: the public ranking (no sign-in, no script) and the staff dashboard.

Public pages show totals, grades, groups and per-indicator figures only: never a dossier or an
officer. Dashboard pages need a staff identity (the gateway's Authorization header, or the
``sqi_session`` cookie the development sign-in sets) and show only the identity's subtree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from services.reporting.adapters import repository as repo
from services.reporting.api.deps import App, Changes, Methodology, Model, cached, require_within_scope
from services.reporting.api.i18n import TEXTS, pick
from services.reporting.api.live import event_stream
from services.reporting.api.render import Link, html, ranking_html, url
from services.reporting.api.render_pool import RenderPool
from services.reporting.domain import periods
from services.reporting.domain.briefing import RankingRow
from services.reporting.domain.charts import trend_svg
from services.reporting.domain.petitions import pending
from services.reporting.domain.ranking import StoredRow, sort_rows
from services.reporting.views import utcnow
from shared.calendar import local_date
from shared.dev_tokens import mint_dev_token
from shared.identity import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, Principal, encode_principal
from shared.urls import page_path, segment
from shared.web import ApiError, CurrentPrincipal

router = APIRouter(include_in_schema=False)
SESSION_COOKIE = "sqi_session"
Lang = Annotated[str | None, Query(max_length=5)]
PeriodQ = Annotated[str | None, Query(max_length=16)]
STALE_AFTER = timedelta(hours=1)
ON_TIME_INDICATORS = {"2.1", "DOSSIER_ON_TIME"}  # handled on time: its shortfall includes the overdue


def render(request: Request, name: str, lang: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """A page rendered here, on the event loop: the pages that are not cached (the dashboard's)."""
    return HTMLResponse(html(name, lang, page_path(request), _query(request), ctx), status_code=status)


async def render_cached(request: Request, name: str, lang: str, **ctx: Any) -> HTMLResponse:
    """A cached page, rendered in the render process (``ctx`` must pickle: ``Link``, not lambdas)."""
    pool: RenderPool = request.app.state.renderer
    return HTMLResponse(await pool.run(html, name, lang, request.url.path, _query(request), ctx))


async def render_ranking(
    request: Request,
    name: str,
    lang: str,
    stored: list[StoredRow],
    document: dict[str, Any] | None,
    groups_of: RankingRow | None = None,
    **ctx: Any,
) -> HTMLResponse:
    """A cached page with a ranking: the ranking is built in the render process too."""
    pool: RenderPool = request.app.state.renderer
    page = await pool.run(
        ranking_html, name, lang, page_path(request), _query(request), stored, document, groups_of, ctx
    )
    return HTMLResponse(page)


def _query(request: Request) -> tuple[tuple[str, str], ...]:
    return tuple(request.query_params.items())


def _freshness(computed_at: datetime | None, now: datetime) -> dict[str, Any]:
    return {
        "computed_at": computed_at,
        "stale": computed_at is not None and now - computed_at > STALE_AFTER,
        "age_hours": round((now - computed_at).total_seconds() / 3600, 1) if computed_at else None,
    }


async def _pick_period(model: Model, app: App, methodology: str, period: str | None, now: datetime) -> str | None:
    if period and periods.kind_of(period):
        return period
    async with app.sessions() as session:
        return await model.latest_month(session, methodology, now)


async def _period_options(app: App, model: Model, methodology: str) -> list[str]:
    async with app.sessions() as session:
        return await model.periods(session, methodology)


# --- public -----------------------------------------------------------------------------------


# Public pages read only scores and units: each renders once per version of them (deps.cached).


@router.get("/", response_class=HTMLResponse)
async def public_ranking(
    request: Request, app: App, model: Model, lang: Lang = None, period: PeriodQ = None
) -> Response:
    return await cached(request, lambda: _public_ranking(request, app, model, lang, period))


async def _public_ranking(request: Request, app: App, model: Model, lang: str | None, period: str | None) -> Response:
    lang = pick(lang)
    now = utcnow()
    mid = app.settings.reporting_default_methodology
    label = await _pick_period(model, app, mid, period, now)
    stored: list[StoredRow] = []
    computed = None
    async with app.sessions() as session:
        if label:
            stored, computed = await model.stored_ranking(
                session, methodology_id=mid, period=label, level="province", parent=None
            )
        document = await model.document(session, mid)
        latest = await model.latest_computed_at(session)
    return await render_ranking(
        request,
        "public_ranking.html",
        lang,
        stored,
        document,
        period=label,
        options=await _period_options(app, model, mid),
        link=Link("/ranking/", lang, (("period", label),)),
        **_freshness(computed or latest, now),
    )


@router.get("/ranking/methodology", response_class=HTMLResponse)
async def public_methodology(request: Request, app: App, model: Model, lang: Lang = None) -> Response:
    return await cached(request, lambda: _public_methodology(request, app, model, lang))


async def _public_methodology(request: Request, app: App, model: Model, lang: str | None) -> Response:
    lang = pick(lang)
    mid = app.settings.reporting_default_methodology
    async with app.sessions() as session:
        doc = await model.document(session, mid)
    return await render_cached(request, "methodology.html", lang, document=doc)


@router.get("/ranking/{unit_code}", response_class=HTMLResponse)
async def public_unit(
    request: Request, unit_code: str, app: App, model: Model, lang: Lang = None, period: PeriodQ = None
) -> Response:
    return await cached(request, lambda: _public_unit(request, unit_code, app, model, lang, period))


async def _public_unit(
    request: Request, unit_code: str, app: App, model: Model, lang: str | None, period: str | None
) -> Response:
    lang = pick(lang)
    now = utcnow()
    mid = app.settings.reporting_default_methodology
    label = await _pick_period(model, app, mid, period, now)
    async with app.sessions() as session:
        units = await model.units(session)
        if unit_code not in units:
            raise ApiError(404, f"unknown unit {unit_code!r}")
        record = None
        children: list[StoredRow] = []
        lines: list[Any] = []
        if label:
            record = await model.unit_record(session, methodology_id=mid, unit_code=unit_code, period=label)
            children, _ = await model.stored_ranking(
                session, methodology_id=mid, period=label, level=None, parent=unit_code
            )
            if record is not None:
                lines = await model.indicator_lines(session, mid, record)
        document = await model.document(session, mid)
    return await render_ranking(
        request,
        "public_unit.html",
        lang,
        children,
        document,
        groups_of=record.row if record else None,
        unit=units[unit_code],
        period=label,
        options=await _period_options(app, model, mid),
        record=record,
        lines=lines,
        link=Link("/ranking/", lang, (("period", label),)),
        **_freshness(record.computed_at if record else None, now),
    )


# --- staff: sign-in ---------------------------------------------------------------------------


async def _demo_identities(app: App, model: Model) -> list[dict[str, str]]:
    async with app.sessions() as session:
        units = await model.units(session)
    today = local_date(utcnow())
    local = sorted(c for c, u in units.items() if u.level == "local" and u.parent_code == "P01" and u.valid_on(today))
    people = [
        {"sub": "lanh-dao-ct", "role": "leader", "unit": "CT", "label": "Lãnh đạo Cục Thuế / National leader (CT)"},
        {"sub": "truong-p01", "role": "unit_head", "unit": "P01", "label": "Trưởng Thuế TP Hà Nội / Head of P01"},
    ]
    if local:
        people.append(
            {
                "sub": "truong-co-so",
                "role": "unit_head",
                "unit": local[0],
                "label": f"Trưởng Thuế cơ sở / Local head ({local[0]})",
            }
        )
    return people


@router.get("/dashboard/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, app: App, model: Model, lang: Lang = None) -> Response:
    lang = pick(lang)
    if not app.settings.dev_sign_in_enabled:
        raise ApiError(404, "the development sign-in is not available in production")
    return render(request, "sign_in.html", lang, people=await _demo_identities(app, model))


@router.post("/dashboard/sign-in")
async def sign_in(app: App, model: Model, sub: Annotated[str, Form(max_length=64)], lang: Lang = None) -> Response:
    if not app.settings.dev_sign_in_enabled:
        raise ApiError(404, "the development sign-in is not available in production")
    person = next((p for p in await _demo_identities(app, model) if p["sub"] == sub), None)
    if person is None:
        raise ApiError(422, "unknown demo identity", details=[{"field": "sub", "reason": "not a demo identity"}])
    s = app.settings
    token = mint_dev_token(s, sub=sub, role=person["role"], unit=person["unit"])
    response = RedirectResponse(url("/dashboard", pick(lang)), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=s.cookie_secure,
        max_age=s.jwt_max_lifetime_seconds,
        path="/",
    )
    return response


@router.post("/dashboard/sign-out")
async def sign_out(lang: Lang = None) -> Response:
    response = RedirectResponse(url("/dashboard/sign-in", pick(lang)), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _staff_or_redirect(principal: Principal, lang: str) -> Response | None:
    if principal.is_staff:
        return None
    return RedirectResponse(url("/dashboard/sign-in", lang), status_code=303)


# --- staff: the dashboard ---------------------------------------------------------------------


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    app: App,
    model: Model,
    principal: CurrentPrincipal,
    lang: Lang = None,
    period: PeriodQ = None,
    level: Annotated[str | None, Query(max_length=16)] = None,
    methodology: Methodology = None,
    sort: Annotated[str | None, Query(max_length=16)] = None,
    desc: Annotated[int, Query(ge=0, le=1)] = 1,
) -> Response:
    lang = pick(lang)
    if (redirect := _staff_or_redirect(principal, lang)) is not None:
        return redirect
    now = utcnow()
    mid = methodology or app.settings.reporting_default_methodology
    label = await _pick_period(model, app, mid, period, now)
    root = principal.unit or ""
    async with app.sessions() as session:
        units = await model.units(session)
        codes = await model.scope(session, root)
        root_level = units[root].level if root in units else "local"
        chosen_level = level if level in ("province", "local") else ("province" if root_level == "central" else "local")
        rows: list[Any] = []
        computed = None
        if label:
            rows, computed = await model.ranking(
                session, methodology_id=mid, period=label, level=chosen_level, parent=None, codes=codes
            )
        if sort:
            rows = sort_rows(rows, sort, bool(desc))
        groups = await model.groups(session, mid, rows)
        warnings = await model.warnings(session, root=root, now=now, methodology_id=mid)
        latest = await model.latest_computed_at(session)
    return render(
        request,
        "dashboard.html",
        lang,
        principal=principal,
        scope=units.get(root),
        period=label,
        level=chosen_level,
        methodology=mid,
        methodologies=["tax-2025", "portal-766"],
        options=await _period_options(app, model, mid),
        rows=rows,
        groups=groups,
        sort=sort,
        desc=desc,
        warnings=warnings[:50],
        warning_count=len(warnings),
        link=Link("/dashboard/units/", lang, (("period", label), ("methodology", mid))),
        sort_link=lambda key: url(
            "/dashboard",
            lang,
            period=label,
            level=chosen_level,
            methodology=mid,
            sort=key,
            desc="0" if sort == key and desc else "1",
        ),
        export=lambda kind: url(f"/api/v1/reports/{kind}", "vi", period=label, level=chosen_level, methodology=mid),
        briefing=url("/api/v1/reports/briefing.pdf", "vi", period=label, methodology=mid),
        **_freshness(computed or latest, now),
    )


@router.get("/dashboard/version")
async def dashboard_version(app: App, model: Model, principal: CurrentPrincipal) -> JSONResponse:
    """What the page polls: it reloads itself when the latest computation changes."""
    if not principal.is_staff:
        raise ApiError(401, "a staff token is required")
    async with app.sessions() as session:
        latest = await model.latest_computed_at(session)
    return JSONResponse({"computed_at": latest.isoformat() if latest else None})


@router.get("/dashboard/live")
async def dashboard_live(app: App, changes: Changes, principal: CurrentPrincipal) -> Response:
    """Server-sent events for the dashboard's pages: ``change`` when the read model changes.

    The pages reload on a score change and offer a reload on a warnings change; without this
    stream (or without JavaScript) they poll ``/dashboard/version`` or are simply reloaded.
    """
    if not principal.is_staff:
        raise ApiError(401, "a staff token is required")
    if changes.full:
        raise ApiError(503, "too many live clients; the page polls instead")
    s = app.settings
    return StreamingResponse(
        event_stream(changes, heartbeat_s=s.reporting_live_heartbeat_s, min_interval_s=s.reporting_live_min_interval_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _outside_scope(
    request: Request, model: Any, session: Any, principal: Principal, unit_code: str, lang: str
) -> Response | None:
    """The "forbidden" page when ``unit_code`` lies outside the identity's subtree, else None."""
    try:
        await require_within_scope(model, session, principal, unit_code)
    except ApiError as exc:
        if exc.status == 403:
            return render(request, "forbidden.html", lang, status=403)
        raise
    return None


@router.get("/dashboard/units/{unit_code}", response_class=HTMLResponse)
async def dashboard_unit(
    request: Request,
    unit_code: str,
    app: App,
    model: Model,
    principal: CurrentPrincipal,
    lang: Lang = None,
    period: PeriodQ = None,
    methodology: Methodology = None,
) -> Response:
    lang = pick(lang)
    if (redirect := _staff_or_redirect(principal, lang)) is not None:
        return redirect
    now = utcnow()
    mid = methodology or app.settings.reporting_default_methodology
    label = await _pick_period(model, app, mid, period, now)
    async with app.sessions() as session:
        if (forbidden := await _outside_scope(request, model, session, principal, unit_code, lang)) is not None:
            return forbidden
        units = await model.units(session)
        record = None
        lines: list[Any] = []
        children: list[Any] = []
        trend: list[Any] = []
        if label:
            record = await model.unit_record(session, methodology_id=mid, unit_code=unit_code, period=label)
            if record is not None:
                lines = await model.indicator_lines(session, mid, record)
            children, _ = await model.ranking(session, methodology_id=mid, period=label, level=None, parent=unit_code)
            trend = await model.trend(session, methodology_id=mid, unit_code=unit_code, period=label)
        groups = await model.groups(session, mid, [record.row] if record else children)
        warnings = await model.warnings(session, root=unit_code, now=now, methodology_id=mid)
        subtree = await model.scope(session, unit_code)
        feeds = await repo.feeds(session, unit_codes=subtree)
        petition_rows, waiting, late = await repo.pending_petitions(session, unit_codes=subtree, now=now)
    chart = trend_svg(
        [(p[-5:] if len(p) > 4 else p, v) for p, v in trend],
        title=f"{TEXTS[lang]['trend']}: {units[unit_code].name}",
    )
    return render(
        request,
        "dashboard_unit.html",
        lang,
        principal=principal,
        unit=units[unit_code],
        period=label,
        methodology=mid,
        options=await _period_options(app, model, mid),
        record=record,
        lines=sorted(lines, key=lambda x: -x.points_lost),
        groups=groups,
        children=children,  # best first, provisional last (build_ranking)
        trend=trend,
        chart=chart,
        warnings=warnings[:100],
        petitions=pending(petition_rows, now),
        petitions_waiting=waiting,
        petitions_late=late,
        feeds=feeds[:50],
        link=Link("/dashboard/units/", lang, (("period", label), ("methodology", mid))),
        indicator_link=Link(
            f"/dashboard/units/{segment(unit_code)}/indicators/", lang, (("period", label), ("methodology", mid))
        ),
        **_freshness(record.computed_at if record else None, now),
    )


@router.get("/dashboard/units/{unit_code}/indicators/{indicator_id}", response_class=HTMLResponse)
async def dashboard_indicator(
    request: Request,
    unit_code: str,
    indicator_id: str,
    app: App,
    model: Model,
    principal: CurrentPrincipal,
    lang: Lang = None,
    period: PeriodQ = None,
    methodology: Methodology = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The dossiers behind an indicator's shortfall, from scoring's contract API at request time."""
    lang = pick(lang)
    if (redirect := _staff_or_redirect(principal, lang)) is not None:
        return redirect
    now = utcnow()
    mid = methodology or app.settings.reporting_default_methodology
    label = await _pick_period(model, app, mid, period, now)
    async with app.sessions() as session:
        if (forbidden := await _outside_scope(request, model, session, principal, unit_code, lang)) is not None:
            return forbidden
        units = await model.units(session)
        record = (
            await model.unit_record(session, methodology_id=mid, unit_code=unit_code, period=label) if label else None
        )
        lines = await model.indicator_lines(session, mid, record) if record else []
    line = next((x for x in lines if x.indicator_id == indicator_id), None)
    listing: dict[str, Any] | None = None
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.get(
                f"{app.settings.scoring_url.rstrip('/')}/api/v1/scores/{segment(unit_code)}"
                f"/indicators/{segment(indicator_id)}/dossiers",
                params={"period": label or "", "methodology": mid, "page": page, "page_size": 50},
                headers={
                    INTERNAL_TOKEN_HEADER: app.settings.internal_token,
                    PRINCIPAL_HEADER: encode_principal(principal),
                },
            )
        if r.status_code == 200:
            listing = r.json()
    except httpx.HTTPError:
        listing = None
    own: list[Any] = []
    if listing is None and indicator_id in ON_TIME_INDICATORS:
        # Scoring is down: the open overdue dossiers (with officers) still come from our model.
        async with app.sessions() as session:
            codes = await model.dossier_scope(session, unit_code, local_date(now))
            own = await repo.open_dossiers(session, unit_codes=codes, due_before=now, limit=200)
    return render(
        request,
        "dashboard_indicator.html",
        lang,
        unit=units[unit_code],
        indicator_id=indicator_id,
        line=line,
        period=label,
        listing=listing,
        own=own,
        page=page,
        back=url(f"/dashboard/units/{segment(unit_code)}", lang, period=label, methodology=mid),
        next_link=url(
            f"/dashboard/units/{segment(unit_code)}/indicators/{segment(indicator_id)}",
            lang,
            period=label,
            methodology=mid,
            page=str(page + 1),
        ),
    )
