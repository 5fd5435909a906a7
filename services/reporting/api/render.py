"""Pages and the ranking document as bytes, from plain data: what the render process runs.

Nothing here touches the database, a request or an event loop. The API reads what a page shows
and hands it over (``api.render_pool``), so the CPU of a render — Jinja over hundreds of rows,
the JSON of ~700 units — never holds the API's event loop; the same functions render in-process
where a page is not cached (the staff dashboard). Everything passed in must pickle: a page's
links are ``Link`` values, not lambdas.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import orjson

from services.reporting.api.i18n import KIND_NAMES, PETITION_NAMES, TEXTS
from services.reporting.domain import periods
from services.reporting.domain.briefing import RankingRow
from services.reporting.domain.ranking import StoredRow, build_ranking, grade_name, group_labels
from services.reporting.domain.text import shown
from shared.calendar import VN_TZ
from shared.urls import segment

TEMPLATES = Path(__file__).parent / "templates"
env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(), finalize=shown
)


def url(path: str, lang: str, **params: str | None) -> str:
    query = {k: v for k, v in params.items() if v} | ({"lang": lang} if lang != "vi" else {})
    return f"{path}?{urlencode(query)}" if query else path


@dataclass(frozen=True)
class Link:
    """``link(code)`` → ``{prefix}{code}`` (``code`` one path segment) with ``params`` in ``lang``."""

    prefix: str
    lang: str
    params: tuple[tuple[str, str | None], ...] = ()

    def __call__(self, code: str) -> str:
        return url(f"{self.prefix}{segment(code)}", self.lang, **dict(self.params))


def num(x: Decimal | float | int | None) -> str:
    """A figure on a page: at most 2 decimals, rounded half-up as methodology.md's r2."""
    if x is None:
        return "—"
    if not isinstance(x, (Decimal, float)):
        return str(x)
    return f"{Decimal(str(x)).quantize(Decimal('0.01'), ROUND_HALF_UP):.2f}".rstrip("0").rstrip(".")


def local(at: datetime | None) -> str:
    if at is None:
        return ""
    at_vn = at.astimezone(VN_TZ)
    if (at_vn.hour, at_vn.minute, at_vn.second) == (0, 0, 0):
        # A computed due time is the next local midnight: the end of the previous day.
        return (at_vn - timedelta(days=1)).strftime("24:00 %d/%m/%Y")
    return at_vn.strftime("%H:%M %d/%m/%Y")


def html(name: str, lang: str, path: str, query: Sequence[tuple[str, str]], ctx: Mapping[str, Any]) -> bytes:
    """Template ``name`` in ``lang`` for the page at ``path`` with ``query`` (the language switch keeps it)."""
    other = "en" if lang == "vi" else "vi"
    params = {k: v for k, v in query if k != "lang"}
    en = 1 if lang == "en" else 0
    page = env.get_template(name).render(
        {
            "lang": lang,
            "t": TEXTS[lang],
            "switch_url": url(path, other, **params),
            "url": lambda p, **kw: url(p, lang, **kw),
            "segment": segment,
            "num": num,
            "local": local,
            "grade_name": lambda g: grade_name(g, lang),
            "kind_name": lambda k: KIND_NAMES.get(k, (k, k))[en],
            "petition_name": lambda k: PETITION_NAMES.get(k, (k, k))[en],
            "period_name": lambda p: periods.display(p, lang),
            **ctx,
        }
    )
    return page.encode()


def ranking_html(
    name: str,
    lang: str,
    path: str,
    query: Sequence[tuple[str, str]],
    stored: Sequence[StoredRow],
    document: Mapping[str, Any] | None,
    groups_of: RankingRow | None,
    ctx: Mapping[str, Any],
) -> bytes:
    """A page with a ranking (``ranked``, ``provisional``, ``groups``) built from stored rows.

    The group columns come from the methodology document, else from the groups seen in
    ``groups_of`` (a unit's own row) or in the ranking.
    """
    rows = build_ranking(stored)
    seen = groups_of.groups if groups_of else (g for r in rows for g in r.groups)
    return html(
        name,
        lang,
        path,
        query,
        {
            **ctx,
            "ranked": [r for r in rows if not r.provisional],
            "provisional": [r for r in rows if r.provisional],
            "groups": group_labels(document, seen),
        },
    )


def ranking_json(
    period: str,
    methodology: str,
    computed_at: datetime | None,
    stored: Sequence[StoredRow],
    document: Mapping[str, Any] | None,
) -> bytes:
    """``GET /api/v1/reports/ranking``'s body; ``computed_at``: the data's time (its "data as of")."""
    rows = build_ranking(stored)
    groups = group_labels(document, (g for r in rows for g in r.groups))
    return orjson.dumps(
        {
            "period": period,
            "methodology": methodology,
            "computed_at": computed_at.isoformat() if computed_at else None,
            "groups": [{"id": g.group_id, "name_vi": g.name_vi, "name_en": g.name_en} for g in groups],
            "items": [
                {
                    "unit_code": r.unit_code,
                    "unit_name": r.unit_name,
                    "level": r.level,
                    "total": float(r.total),
                    "grade": r.grade,
                    "rank": r.rank,
                    "rank_delta": r.rank_delta,
                    "groups": {k: float(v) for k, v in r.groups.items()},
                    "dossiers": r.dossiers,
                    "provisional": r.provisional,
                }
                for r in rows
            ],
        }
    )


def warm() -> None:
    """Compile the cached pages' templates and import what their data unpickles into (a unit
    page's ``ScoreRecord``, ``UnitInfo``): in a new render process, before its first page."""
    importlib.import_module("services.reporting.adapters.repository")
    for name in ("public_ranking.html", "public_unit.html", "methodology.html"):
        env.get_template(name)
