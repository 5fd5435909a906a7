"""Reads of the read model: rankings, a unit's history, warnings' raw material, feeds."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, and_, any_, case, cast, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.adapters.tables import dossier, feed, methodology, petition, score, score_alert, unit
from services.reporting.domain.briefing import RankingRow
from services.reporting.domain.petitions import OPEN, PENDING, UNPUBLISHED
from services.reporting.domain.ranking import StoredRow


@dataclass(frozen=True)
class UnitInfo:
    code: str
    name: str
    level: str
    parent_code: str | None
    valid_from: date | None = None
    valid_to: date | None = None  # the last day it is valid (inclusive), as scoring reads it
    successor_code: str | None = None

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class ScoreRecord:
    """One stored score with everything a page shows."""

    row: RankingRow
    period: str
    indicators: list[dict[str, Any]]
    computed_at: datetime


_UNIT_INFO = tuple(unit.c[f.name] for f in fields(UnitInfo))


async def load_units(session: AsyncSession) -> dict[str, UnitInfo]:
    """Every unit with its validity: a period before the 2025 reorganisation is reported on the
    units of its own time (closed since), and a unit whose closure is scheduled is still today's."""
    rows = await session.execute(select(*_UNIT_INFO))
    return {r.code: UnitInfo(**r._mapping) for r in rows}


def _record(r: Any, units: dict[str, UnitInfo]) -> ScoreRecord:
    info = units.get(r.unit_code)
    return ScoreRecord(
        row=RankingRow(
            unit_code=r.unit_code,
            unit_name=r.unit_name or (info.name if info else r.unit_code),
            level=r.level or (info.level if info else "local"),
            parent_code=r.parent_code or (info.parent_code if info else None),
            total=Decimal(r.total),
            grade=r.grade,
            rank=None if r.provisional else r.rank,
            rank_delta=None if r.provisional else r.rank_delta,
            groups={g: Decimal(p) for g, p in (r.groups or {}).items()},
            dossiers=r.dossiers,
            provisional=r.provisional,
        ),
        period=r.period,
        indicators=list(r.indicators or []),
        computed_at=r.computed_at,
    )


async def period_scores(
    session: AsyncSession, *, methodology_id: str, period: str, units: dict[str, UnitInfo]
) -> list[ScoreRecord]:
    rows = await session.execute(select(score).where(score.c.methodology == methodology_id, score.c.period == period))
    return [_record(r, units) for r in rows]


async def unit_history(
    session: AsyncSession, *, methodology_id: str, unit_code: str, labels: Collection[str], units: dict[str, UnitInfo]
) -> dict[str, ScoreRecord]:
    rows = await session.execute(
        select(score).where(
            score.c.methodology == methodology_id, score.c.unit_code == unit_code, score.c.period.in_(list(labels))
        )
    )
    return {r.period: _record(r, units) for r in rows}


async def available_periods(session: AsyncSession, *, methodology_id: str) -> list[str]:
    rows = await session.execute(
        select(score.c.period).where(score.c.methodology == methodology_id).group_by(score.c.period)
    )
    return sorted((r.period for r in rows), reverse=True)


async def latest_computed_at(session: AsyncSession) -> datetime | None:
    return (await session.execute(select(func.max(score.c.computed_at)))).scalar()


async def open_dossiers(
    session: AsyncSession, *, unit_codes: Collection[str], due_before: datetime, limit: int = 5_000
) -> list[Any]:
    """Unfinished dossiers of these units due before ``due_before`` (overdue included), but for
    those waiting for the applicant's documents since before their due time (the clock is
    paused). A request after the due time pauses nothing: the dossier stays overdue (events.md;
    scoring locks it overdue at the request)."""
    rows = await session.execute(
        select(dossier.c.dossier_id, dossier.c.unit_code, dossier.c.officer_id, dossier.c.due_at, dossier.c.received_at)
        .where(
            dossier.c.finished_at.is_(None),
            or_(dossier.c.paused_at.is_(None), dossier.c.paused_at > dossier.c.due_at),
            dossier.c.unit_code.in_(list(unit_codes)),
            dossier.c.due_at < due_before,
        )
        .order_by(dossier.c.due_at, dossier.c.dossier_id)
        .limit(limit)
    )
    return list(rows)


async def recent_alerts(
    session: AsyncSession, *, unit_codes: Collection[str], since: datetime, methodology_id: str
) -> list[Any]:
    rows = await session.execute(
        select(score_alert)
        .where(
            score_alert.c.unit_code.in_(list(unit_codes)),
            score_alert.c.computed_at >= since,
            score_alert.c.methodology == methodology_id,
        )
        .order_by(score_alert.c.computed_at.desc())
    )
    return list(rows)


async def feeds(session: AsyncSession, *, unit_codes: Collection[str]) -> list[Any]:
    rows = await session.execute(
        select(feed).where(feed.c.unit_code.in_(list(unit_codes))).order_by(feed.c.source, feed.c.unit_code)
    )
    return list(rows)


async def pending_petitions(
    session: AsyncSession, *, unit_codes: Collection[str], now: datetime, limit: int = 200
) -> tuple[list[Any], int, int]:
    """Waiting petitions of these units (overdue first), and the counts: waiting, overdue."""
    codes = list(unit_codes)
    deadline = case((petition.c.status.in_(OPEN), petition.c.answer_due_at), else_=petition.c.publish_due_at)
    rows = await session.execute(
        select(petition)
        .where(petition.c.unit_code.in_(codes), petition.c.status.in_(PENDING))
        .order_by((deadline < now).desc(), deadline, petition.c.petition_id)
        .limit(limit)
    )
    is_open = petition.c.status.in_(OPEN)
    late = or_(
        and_(is_open, petition.c.answer_due_at < now),
        and_(petition.c.status.in_(UNPUBLISHED), petition.c.publish_due_at < now),
    )
    counts = (
        await session.execute(
            select(func.count().filter(petition.c.status.in_(PENDING)), func.count().filter(late)).where(
                petition.c.unit_code.in_(codes)
            )
        )
    ).one()
    return list(rows), int(counts[0]), int(counts[1])


async def cached_methodology(session: AsyncSession, methodology_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(select(methodology.c.document).where(methodology.c.methodology_id == methodology_id))
    ).first()
    return dict(row.document) if row else None


async def store_methodology(session: AsyncSession, methodology_id: str, document: dict[str, Any]) -> None:
    stmt = pg_insert(methodology).values(methodology_id=methodology_id, document=document)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[methodology.c.methodology_id],
            set_={"document": stmt.excluded.document, "fetched_at": func.now()},
        )
    )


def previous_ranks(records: list[ScoreRecord]) -> dict[str, int | None]:
    return {r.row.unit_code: r.row.rank for r in records}


async def ranking_rows(
    session: AsyncSession,
    *,
    methodology_id: str,
    period: str,
    level: str | None,
    parent: str | None,
    codes: Collection[str] | None,
    previous_period: str | None,
) -> tuple[list[StoredRow], datetime | None]:
    """The scores of ``level`` under ``parent`` within ``codes``, and the period's latest computation.

    One query, only what a ranking shows (no indicators), narrowed in SQL: a ranking of 35
    provinces no longer decodes the ~700 local offices' rows. A score stored without its name,
    level or parent takes the unit tree's, as ``_record`` does; each row carries its rank in
    ``previous_period`` (for a rank change scoring did not send). Plain tuples: they go to the
    render process as they are (``api.render_pool``).
    """
    latest = (
        select(func.max(score.c.computed_at))
        .where(score.c.methodology == methodology_id, score.c.period == period)
        .scalar_subquery()
    )
    prev = score.alias("prev")
    # A lookup per row by the primary key, whatever the planner believes about a fresh table.
    previous_rank = (
        select(prev.c.rank)
        .where(
            prev.c.methodology == score.c.methodology,
            prev.c.period == (previous_period or ""),
            prev.c.unit_code == score.c.unit_code,
            prev.c.provisional.is_(False),
        )
        .scalar_subquery()
    )
    eff_level = func.coalesce(func.nullif(score.c.level, ""), unit.c.level, "local")
    eff_parent = func.coalesce(func.nullif(score.c.parent_code, ""), unit.c.parent_code)
    query = (
        select(
            score.c.unit_code,
            func.coalesce(func.nullif(score.c.unit_name, ""), unit.c.name, score.c.unit_code),
            eff_level,
            eff_parent,
            score.c.total,
            score.c.grade,
            score.c.rank,
            score.c.rank_delta,
            score.c.dossiers,
            score.c.provisional,
            score.c.groups.cast(Text),  # orjson decodes it faster than the JSONB codec
            previous_rank,
            latest,
        )
        .select_from(score.outerjoin(unit, unit.c.code == score.c.unit_code))
        .where(score.c.methodology == methodology_id, score.c.period == period)
    )
    if level:
        query = query.where(eff_level == level)
    if parent:
        query = query.where(eff_parent == parent)
    if codes is not None:
        query = query.where(score.c.unit_code == any_(cast(list(codes), ARRAY(Text))))
    rows = (await session.execute(query)).all()
    if not rows:
        return [], (await session.execute(select(latest))).scalar()
    return [StoredRow(*r[:-1]) for r in rows], rows[0][-1]
