"""What the pages, the warnings API and the exports show, built from the read model only."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.adapters import repository as repo
from services.reporting.adapters.calendar import declared_days, working_calendar
from services.reporting.adapters.repository import ScoreRecord, UnitInfo
from services.reporting.bootstrap import Reporting
from services.reporting.domain import periods
from services.reporting.domain import warnings as w
from services.reporting.domain.briefing import (
    Briefing,
    GroupLabel,
    IndicatorLine,
    Mover,
    RankingRow,
    UnitPage,
    WarningItem,
    WeakIndicator,
)
from services.reporting.domain.ranking import StoredRow, build_ranking, group_labels, indicator_names
from shared.calendar import local_date
from shared.identity import INTERNAL_TOKEN_HEADER
from shared.unit_tree import subtree, successor_target

log = logging.getLogger(__name__)

CACHE_S = 30.0


@dataclass
class ReadCache:
    """Units and methodology documents change rarely: kept in memory for ``CACHE_S`` seconds."""

    units: dict[str, UnitInfo]
    documents: dict[str, dict[str, Any] | None]
    loaded_at: float


SHORT_CACHE_S = 2.0  # the period list and the latest computation time: read on every page


class ReadModel:
    def __init__(self, app: Reporting) -> None:
        self.app = app
        self._cache: ReadCache | None = None
        self._short: dict[str, tuple[float, Any]] = {}

    async def _short_lived(self, key: str, load: Any) -> Any:
        hit = self._short.get(key)
        if hit is not None and time.monotonic() - hit[0] < SHORT_CACHE_S:
            return hit[1]
        value = await load()
        self._short[key] = (time.monotonic(), value)
        return value

    async def periods(self, session: AsyncSession, methodology_id: str) -> list[str]:
        """Scored periods, newest first."""
        return list(
            await self._short_lived(
                f"periods:{methodology_id}",
                lambda: repo.available_periods(session, methodology_id=methodology_id),
            )
        )

    async def latest_computed_at(self, session: AsyncSession) -> datetime | None:
        value: datetime | None = await self._short_lived("latest", lambda: repo.latest_computed_at(session))
        return value

    async def units(self, session: AsyncSession) -> dict[str, UnitInfo]:
        return (await self._fresh(session)).units

    async def _fresh(self, session: AsyncSession) -> ReadCache:
        if self._cache is None or time.monotonic() - self._cache.loaded_at > CACHE_S:
            self._cache = ReadCache(units=await repo.load_units(session), documents={}, loaded_at=time.monotonic())
        return self._cache

    def invalidate(self) -> None:
        """Forget units, documents, periods and the latest time: the read model changed."""
        self._cache = None
        self._short.clear()

    def forget_recent(self) -> None:
        """Forget the period list, the latest time and the calendar (scores changed, not units)."""
        self._short.clear()

    async def document(self, session: AsyncSession, methodology_id: str) -> dict[str, Any] | None:
        cache = await self._fresh(session)
        if methodology_id not in cache.documents:
            cache.documents[methodology_id] = await repo.cached_methodology(session, methodology_id)
        return cache.documents[methodology_id]

    def parents(self, units: dict[str, UnitInfo]) -> dict[str, str | None]:
        return {c: u.parent_code for c, u in units.items()}

    async def scope(self, session: AsyncSession, root: str) -> set[str]:
        """``root`` and every unit below it, closed ones included (a period before a
        reorganisation is reported on the units of its own time), as scoring's scope check."""
        units = await self.units(session)
        return subtree(self.parents(units), root)

    async def dossier_scope(self, session: AsyncSession, root: str, today: date) -> set[str]:
        """The units whose open dossiers ``root`` answers for today: its subtree, and every unit
        no longer valid whose successor chain leads into it (scoring counts a former department's
        dossiers towards its successor: ``drilldown.member_codes``)."""
        return _with_predecessors(await self.scope(session, root), await self.units(session), today)

    # --- rankings -------------------------------------------------------------------------

    async def ranking(
        self,
        session: AsyncSession,
        *,
        methodology_id: str,
        period: str,
        level: str | None,
        parent: str | None,
        codes: set[str] | None = None,
    ) -> tuple[list[RankingRow], datetime | None]:
        stored, computed = await self.stored_ranking(
            session, methodology_id=methodology_id, period=period, level=level, parent=parent, codes=codes
        )
        return build_ranking(stored), computed

    async def stored_ranking(
        self,
        session: AsyncSession,
        *,
        methodology_id: str,
        period: str,
        level: str | None,
        parent: str | None,
        codes: set[str] | None = None,
    ) -> tuple[list[StoredRow], datetime | None]:
        """The ranking's rows as stored (``domain.ranking.build_ranking`` makes it), and its time."""
        return await repo.ranking_rows(
            session,
            methodology_id=methodology_id,
            period=period,
            level=level,
            parent=parent,
            codes=codes,
            previous_period=periods.previous(period),
        )

    async def groups(self, session: AsyncSession, methodology_id: str, rows: Sequence[RankingRow]) -> list[GroupLabel]:
        doc = await self.document(session, methodology_id)
        return group_labels(doc, (g for r in rows for g in r.groups))

    async def unit_record(
        self, session: AsyncSession, *, methodology_id: str, unit_code: str, period: str
    ) -> ScoreRecord | None:
        units = await self.units(session)
        found = await repo.unit_history(
            session, methodology_id=methodology_id, unit_code=unit_code, labels=[period], units=units
        )
        return found.get(period)

    async def trend(
        self, session: AsyncSession, *, methodology_id: str, unit_code: str, period: str, n: int = 12
    ) -> list[tuple[str, Decimal | None]]:
        labels = periods.last_n(period, n)
        units = await self.units(session)
        found = await repo.unit_history(
            session, methodology_id=methodology_id, unit_code=unit_code, labels=labels, units=units
        )
        return [(p, found[p].row.total if p in found else None) for p in labels]

    async def indicator_lines(
        self, session: AsyncSession, methodology_id: str, record: ScoreRecord
    ) -> list[IndicatorLine]:
        names = indicator_names(await self.document(session, methodology_id))
        lines = []
        for i in record.indicators:
            vi, en, _ = names.get(str(i.get("id")), (str(i.get("id")), str(i.get("id")), ""))
            ratio = i.get("ratio")
            lines.append(
                IndicatorLine(
                    indicator_id=str(i.get("id")),
                    name_vi=vi,
                    name_en=en,
                    numerator=i.get("numerator"),
                    denominator=i.get("denominator"),
                    ratio=None if ratio is None else Decimal(str(ratio)),
                    points=Decimal(str(i.get("points", 0))),
                    max_points=Decimal(str(i.get("max_points", 0))),
                    applicable=bool(i.get("applicable", True)),
                )
            )
        return lines

    async def latest_month(self, session: AsyncSession, methodology_id: str, now: datetime) -> str | None:
        labels = await self.periods(session, methodology_id)
        return periods.latest_closed_month(labels, local_date(now))

    # --- warnings -------------------------------------------------------------------------

    async def warnings(
        self, session: AsyncSession, *, root: str, now: datetime, methodology_id: str | None = None
    ) -> list[WarningItem]:
        s = self.app.settings
        codes = await self.scope(session, root)
        dossier_codes = _with_predecessors(codes, await self.units(session), local_date(now))
        days = await self._short_lived("calendar", lambda: declared_days(session))
        window_end = w.due_window_end(now, s.reporting_due_soon_wd, working_calendar(days))
        items: list[WarningItem] = []
        for d in await repo.open_dossiers(session, unit_codes=dossier_codes, due_before=window_end):
            items.append(
                w.dossier_warning(
                    dossier_id=d.dossier_id, unit_code=d.unit_code, officer_id=d.officer_id, due_at=d.due_at, now=now
                )
            )
        since = now - timedelta(days=s.reporting_alert_days)
        for a in await repo.recent_alerts(
            session, unit_codes=codes, since=since, methodology_id=methodology_id or s.reporting_default_methodology
        ):
            items.append(
                w.alert_warning(
                    kind=a.kind, unit_code=a.unit_code, period=a.period, previous=a.previous, current=a.current
                )
            )
        for f in await repo.feeds(session, unit_codes=dossier_codes):
            limit = w.silence_limit(
                f.usual_gap_s,
                factor=s.reporting_feed_silent_factor,
                min_s=s.reporting_feed_silent_min_s,
                default_s=s.reporting_feed_silent_default_s,
            )
            if now - f.last_accepted_at > limit:
                items.append(
                    w.feed_warning(source=f.source, unit_code=f.unit_code, last_accepted_at=f.last_accepted_at, now=now)
                )
        order = {k: i for i, k in enumerate(w.KINDS)}
        return sorted(items, key=lambda i: (order.get(i.kind, 9), i.due_at or now, i.unit_code))

    # --- the briefing ---------------------------------------------------------------------

    async def briefing(
        self,
        session: AsyncSession,
        *,
        root: str,
        period: str,
        methodology_id: str,
        unit_code: str | None,
        now: datetime,
    ) -> Briefing:
        units = await self.units(session)
        codes = await self.scope(session, root)
        scope_unit = units.get(root)
        level = "province" if root == "CT" or (scope_unit and scope_unit.level == "central") else "local"
        rows, computed = await self.ranking(
            session, methodology_id=methodology_id, period=period, level=level, parent=None, codes=codes
        )
        before = periods.previous(period)
        prev_rows: dict[str, RankingRow] = {}
        if before:
            prev, _ = await self.ranking(
                session, methodology_id=methodology_id, period=before, level=level, parent=None, codes=codes
            )
            prev_rows = {r.unit_code: r for r in prev}
        movers = [
            Mover(r.unit_code, r.unit_name, prev_rows[r.unit_code].total, r.total)
            for r in rows
            if r.unit_code in prev_rows
        ]
        up = sorted((m for m in movers if m.change > 0), key=lambda m: -m.change)[:5]
        down = sorted((m for m in movers if m.change < 0), key=lambda m: m.change)[:5]
        records = await repo.period_scores(session, methodology_id=methodology_id, period=period, units=units)
        in_scope = [r for r in records if r.row.unit_code in {x.unit_code for x in rows}]
        lost: dict[str, tuple[Decimal, int]] = {}
        for rec in in_scope:
            for line in await self.indicator_lines(session, methodology_id, rec):
                if line.points_lost > 0:
                    total, count = lost.get(line.indicator_id, (Decimal(0), 0))
                    lost[line.indicator_id] = (total + line.points_lost, count + 1)
        names = indicator_names(await self.document(session, methodology_id))
        weakest = [
            WeakIndicator(i, names.get(i, (i, i, ""))[0], names.get(i, (i, i, ""))[1], pts, n)
            for i, (pts, n) in sorted(lost.items(), key=lambda kv: -kv[1][0])[:5]
        ]
        warnings = await self.warnings(session, root=unit_code or root, now=now, methodology_id=methodology_id)
        page: UnitPage | None = None
        if unit_code:
            mine = await self.unit_record(session, methodology_id=methodology_id, unit_code=unit_code, period=period)
            if mine is not None:
                trend = await self.trend(session, methodology_id=methodology_id, unit_code=unit_code, period=period)
                page = UnitPage(
                    row=mine.row,
                    indicators=await self.indicator_lines(session, methodology_id, mine),
                    warnings=warnings[:50],
                    trend=[(p, t) for p, t in trend if t is not None],
                )
        return Briefing(
            period=period,
            methodology=methodology_id,
            scope_code=root,
            scope_name=scope_unit.name if scope_unit else root,
            groups=await self.groups(session, methodology_id, rows),
            ranking=rows,
            computed_at=computed,
            generated_at=now,
            movers_up=up,
            movers_down=down,
            weakest_indicators=weakest,
            warnings=warnings[:100],
            unit=page,
        )


def _with_predecessors(codes: set[str], units: dict[str, UnitInfo], today: date) -> set[str]:
    """``codes`` and every unit not valid ``today`` whose successor chain leads into them."""
    closed = (c for c, u in units.items() if not u.valid_on(today))
    return codes | {c for c in closed if successor_target(c, units, lambda u: u.valid_on(today)) in codes}


async def refresh_methodologies(app: Reporting, client: httpx.AsyncClient | None = None) -> int:
    """Fetch every methodology document from scoring into our cache; 0 when scoring is down."""
    base = app.settings.scoring_url.rstrip("/")
    headers = {INTERNAL_TOKEN_HEADER: app.settings.internal_token}
    own = client is None
    client = client or httpx.AsyncClient(timeout=3.0)
    try:
        listing = (await client.get(f"{base}/api/v1/methodologies", headers=headers)).raise_for_status().json()
        documents = {}
        for m in listing:
            r = await client.get(f"{base}/api/v1/methodologies/{m['id']}", headers=headers)
            if r.status_code == 200:
                documents[m["id"]] = r.json()
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("methodologies not refreshed from scoring", extra={"error": str(exc)})
        return 0
    finally:
        if own:
            await client.aclose()
    async with app.uow() as uow:
        for mid, doc in documents.items():
            await repo.store_methodology(uow.session, mid, doc)
    return len(documents)


def utcnow() -> datetime:
    return datetime.now(UTC)
