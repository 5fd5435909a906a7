"""Reading the scoring inputs and the read model (bảng điểm) from the ``scoring`` schema."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, any_, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.codec import facts_from_json
from services.scoring.adapters.tables import dossier, petition, procedure, rating, score, unit
from services.scoring.domain import (
    DossierFacts,
    DossierFeedback,
    Period,
    PetitionFacts,
    Procedure,
    RankInput,
    RatingFacts,
    feedback_by_dossier,
    procedure_from_data,
)
from services.scoring.domain.engine import Inputs, UnitRow

_UNIT_ROW = tuple(unit.c[f.name] for f in fields(UnitRow))  # not the copy's revision


async def load_units(session: AsyncSession) -> list[UnitRow]:
    rows = await session.execute(select(*_UNIT_ROW).order_by(unit.c.code))
    return [UnitRow(**dict(r)) for r in rows.mappings()]


async def load_procedures(session: AsyncSession) -> dict[str, Procedure]:
    rows = await session.execute(select(procedure.c.code, procedure.c.data))
    return {r.code: procedure_from_data(r.data) for r in rows}


def _may_count_in(period: Period) -> Any:
    """Dossiers that may count in the period: received before its end, clock not over before its start."""
    return and_(
        dossier.c.received_at < period.end,
        or_(dossier.c.finished_at.is_(None), dossier.c.finished_at >= period.start),
    )


async def load_facts(session: AsyncSession, period: Period, procedures: dict[str, Procedure]) -> list[DossierFacts]:
    """The facts of the dossiers that may count in the period (:func:`_may_count_in`)."""
    stmt = select(dossier.c.facts).where(_may_count_in(period))
    return [facts_from_json(f, procedures) for f in (await session.execute(stmt)).scalars()]


async def load_facts_chunk(
    session: AsyncSession, period: Period, procedures: dict[str, Procedure], *, after: str | None, limit: int
) -> tuple[list[DossierFacts], str | None]:
    """At most ``limit`` of :func:`load_facts`'s dossiers, the next ones after ``after`` by
    ``dossier_id`` (keyset: each chunk one indexed statement, whatever the range's size), and the
    last id read (None: no more). A custom range is counted chunk by chunk, never held whole."""
    stmt = (
        select(dossier.c.dossier_id, dossier.c.facts)
        .where(_may_count_in(period))
        .order_by(dossier.c.dossier_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(dossier.c.dossier_id > after)
    rows = (await session.execute(stmt)).all()
    last = rows[-1].dossier_id if rows else None
    return [facts_from_json(r.facts, procedures) for r in rows], last


async def load_facts_of(
    session: AsyncSession, dossier_ids: Sequence[str], procedures: dict[str, Procedure]
) -> list[DossierFacts]:
    """The facts of the given dossiers (a unit's subtree, found through the stored verdicts)."""
    stmt = select(dossier.c.facts).where(among(dossier.c.dossier_id, dossier_ids))
    return [facts_from_json(f, procedures) for f in (await session.execute(stmt)).scalars()]


def among(column: Any, ids: Sequence[str]) -> Any:
    """``column = ANY($1::text[])``: one array parameter, however many ids (an ``IN`` list is one
    parameter per id, and a national subtree has more dossiers than a statement may have
    parameters)."""
    return column == any_(literal(list(ids), type_=ARRAY(Text)))


def petition_facts(d: dict[str, Any]) -> PetitionFacts:
    """Map a ``feedback.petition-changed.v1`` body onto the domain's petition facts."""

    def dt(k: str) -> datetime | None:
        return datetime.fromisoformat(d[k]) if d.get(k) else None

    received = datetime.fromisoformat(d["received_at"])
    return PetitionFacts(
        petition_id=d["petition_id"],
        unit_code=d["unit_code"],
        dossier_id=d.get("dossier_id"),
        category=d.get("category") if d.get("classification") != "other" else None,
        received_at=received,
        last_transferred_at=dt("clock_started_at") if d.get("transfers") else None,
        status=d.get("status", "received"),
        more_info_requested_at=dt("info_requested_at"),
        answered_at=dt("answered_at"),
        refused_at=dt("refused_at"),
        published_at=dt("published_at"),
        likes=int(d.get("likes", 0)),
        dislikes=int(d.get("dislikes", 0)),
        petitioned_again=bool(d.get("petitioned_again", False)),
    )


def countable_petitions(period: Period) -> Any:
    """The petitions that can count in ``period`` (5.1–5.3): received in it, or before it and not
    ended before it began — the domain's ``evaluate_petition`` judges every other one neither
    received nor handled in the period. Served by the petition's received_at index."""
    return select(petition.c.data).where(
        petition.c.received_at < period.end,
        or_(
            petition.c.received_at >= period.start,
            petition.c.ended_at.is_(None),
            petition.c.ended_at >= period.start,
        ),
    )


async def load_subtree_inputs(session: AsyncSession, period: Period, dossier_ids: Sequence[str]) -> Inputs:
    """What judging ``dossier_ids`` in ``period`` needs, read by key, whatever the history's size:
    their facts, their ratings and the petitions naming them (5.4, before the period's end), and
    the petitions that can count in the period (5.1–5.3). A unit's points at stake judge its
    subtree's dossiers with these and get the same verdicts as from every input of the period;
    :func:`load_inputs` (custom ranges, the recompute) reads every rating and petition before
    the period's end — 1.8 M ratings with two years of national history."""
    ids = list(dossier_ids)
    procedures = await load_procedures(session)
    countable = (await session.execute(countable_petitions(period))).scalars().all()
    naming = await session.execute(
        select(petition.c.data).where(among(petition.c.dossier_id, ids), petition.c.received_at < period.end)
    )
    petitions = {d["petition_id"]: d for d in (*countable, *naming.scalars())}
    return Inputs(
        units=await load_units(session),
        procedures=procedures,
        facts=await load_facts_of(session, ids, procedures),
        petitions=[petition_facts(d) for d in petitions.values()],
        ratings=await _ratings(session, period, among(rating.c.dossier_id, ids)),
    )


async def load_inputs(session: AsyncSession, period: Period, *, with_facts: bool = True) -> Inputs:
    """``with_facts=False``: units, catalogue, petitions and ratings only (recompute brings its own facts)."""
    procedures = await load_procedures(session)
    return Inputs(
        units=await load_units(session),
        procedures=procedures,
        facts=await load_facts(session, period, procedures) if with_facts else [],
        petitions=await load_petitions(session, period),
        ratings=await _ratings(session, period),
    )


async def load_petitions(session: AsyncSession, period: Period) -> list[PetitionFacts]:
    """Every petition received before ``period``'s end (few: loaded whole)."""
    rows = await session.execute(select(petition.c.data).where(petition.c.received_at < period.end))
    return [petition_facts(d) for d in rows.scalars()]


async def load_ratings_of(session: AsyncSession, period: Period, dossier_ids: Sequence[str]) -> list[RatingFacts]:
    """The ratings of the given dossiers given before ``period``'s end (a chunk of a range)."""
    return await _ratings(session, period, among(rating.c.dossier_id, dossier_ids))


async def _ratings(session: AsyncSession, period: Period, *where: Any) -> list[RatingFacts]:
    """The ratings given before ``period``'s end (and matching ``where``)."""
    rows = await session.execute(select(rating).where(rating.c.rated_at < period.end, *where))
    return [RatingFacts(r.dossier_id, r.level, dict(r.criteria), r.rated_at) for r in rows]


async def previous_ranks(session: AsyncSession, period_label: str, methodology: str) -> list[RankInput]:
    rows = await session.execute(
        select(score.c.unit_code, score.c.total, score.c.provisional, score.c.level, score.c.parent_code).where(
            score.c.period == period_label, score.c.methodology == methodology
        )
    )
    return [RankInput(r.unit_code, r.level, r.parent_code, r.total, r.provisional) for r in rows]


async def score_rows(session: AsyncSession, period_label: str, methodology: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(score).where(score.c.period == period_label, score.c.methodology == methodology)
    )
    return [dict(r) for r in rows.mappings()]


RANKING_COLUMNS = (
    score.c.unit_code,
    score.c.total,
    score.c.grade,
    score.c.rank,
    score.c.rank_delta,
    score.c.dossiers,
    score.c.provisional,
    score.c.computed_at,
    score.c.level,
    score.c.parent_code,
    score.c.summary,
)


async def ranking_rows(
    session: AsyncSession, period_label: str, methodology: str, levels: Sequence[str], parent: str | None
) -> list[dict[str, Any]]:
    """The ranking's columns of the stored rows (no payload), filtered by level and parent in SQL."""
    stmt = select(*RANKING_COLUMNS).where(
        score.c.period == period_label, score.c.methodology == methodology, score.c.level.in_(levels)
    )
    if parent is not None:
        stmt = stmt.where(score.c.parent_code == parent)
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


async def score_row(
    session: AsyncSession, period_label: str, methodology: str, unit_code: str
) -> dict[str, Any] | None:
    """One stored row by its key (a breakdown), or None."""
    stmt = select(score).where(
        score.c.period == period_label, score.c.methodology == methodology, score.c.unit_code == unit_code
    )
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else dict(row)


async def period_stored(session: AsyncSession, period_label: str, methodology: str) -> bool:
    stmt = select(score.c.unit_code).where(score.c.period == period_label, score.c.methodology == methodology).limit(1)
    return (await session.execute(stmt)).first() is not None


# 5.4's inputs of given dossiers (a judging chunk, a drill-down page), read by key: every rating
# of them, and the receipt of every petition naming them (petition.dossier_id, indexed).
RATINGS_OF = "SELECT dossier_id, level, rated_at FROM scoring.rating WHERE dossier_id = ANY($1::text[])"
PETITIONS_NAMING = "SELECT dossier_id, received_at FROM scoring.petition WHERE dossier_id = ANY($1::text[])"


def feedback_of_rows(
    ratings: Iterable[Sequence[Any]], petitions: Iterable[Sequence[Any]]
) -> dict[str, DossierFeedback]:
    """Per dossier its :class:`DossierFeedback`, from rows of :data:`RATINGS_OF` and
    :data:`PETITIONS_NAMING` (CPU only: judging calls it in its worker thread)."""
    return feedback_by_dossier((RatingFacts(r[0], r[1], {}, r[2]) for r in ratings), ((r[0], r[1]) for r in petitions))


async def load_feedback(conn: Any, dossier_ids: Sequence[str]) -> dict[str, DossierFeedback]:
    """The :class:`DossierFeedback` of the given dossiers (asyncpg connection)."""
    return feedback_of_rows(await conn.fetch(RATINGS_OF, dossier_ids), await conn.fetch(PETITIONS_NAMING, dossier_ids))
