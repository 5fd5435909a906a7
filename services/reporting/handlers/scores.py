"""Scoring's ``scores-updated``, ``grade-changed`` and ``score-dropped`` into reporting's read model.

A refresh announces its changed units — hundreds per tick while events stream in — in
``scores-updated`` messages of up to fifty units (the consumer applies the messages in hand
together, up to its prefetch, in one transaction). A message's rows are written with one
prepared statement over ``unnest`` arrays on the driver's connection: the SQLAlchemy multi-row
``insert().values(rows)`` it replaces was compiled again for every message and cost more CPU than
the rest of the message (docs/performance.md, reporting's consumers). The body is still
validated with the contract's pydantic models: they define how a total or points become the
stored text, and a malformed body must fail loudly (retried, then parked).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter

from services.reporting.adapters.changes import mark_changed
from services.reporting.domain import periods
from shared.contracts.scoring import GradeChanged, IndicatorFigures, ScoreDropped, ScoresUpdated
from shared.db import driver_connection
from shared.messaging.topology import IncomingMessage
from shared.unit_of_work import UnitOfWork

_INDICATORS = TypeAdapter(list[IndicatorFigures])  # serialised in Rust, as model_dump(mode="json")

# Per unit × methodology of the message (the period and computed_at are the message's).
# An older computation delivered late never overwrites a newer one (the WHERE), and a message
# applied twice changes nothing (the inbox; and an equal computed_at rewrites the same values).
_UPDATED = (
    "total",
    "grade",
    "rank",
    "rank_delta",
    "dossiers",
    "provisional",
    "groups",
    "indicators",
    "unit_name",
    "level",
    "parent_code",
    "computed_at",
)
_STORE_SCORES = f"""
INSERT INTO reporting.score AS s (methodology, period, unit_code, period_kind, {", ".join(_UPDATED)}, received_at)
SELECT m, $2, u, $3, t, g, r, rd, d, p, gr::jsonb, ind::jsonb, un, lv, pc, $4, now()
FROM unnest($1::text[], $5::text[], $6::numeric[], $7::text[], $8::int[], $9::int[], $10::int[], $11::boolean[],
            $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
     AS t(m, u, t, g, r, rd, d, p, gr, ind, un, lv, pc)
ON CONFLICT (methodology, period, unit_code) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in _UPDATED)}, received_at = now()
WHERE s.computed_at <= excluded.computed_at
"""
_STORE_ALERT = """
INSERT INTO reporting.score_alert AS a (kind, methodology, period, unit_code, previous, current, computed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (kind, methodology, period, unit_code) DO UPDATE SET
    previous = excluded.previous, current = excluded.current, computed_at = excluded.computed_at
WHERE a.computed_at <= excluded.computed_at
"""


def _written(status: str) -> int:
    """Rows inserted or updated, from the command tag (``INSERT 0 n``)."""
    return int(status.rsplit(" ", 1)[-1])


def score_columns(update: ScoresUpdated) -> list[list[Any]]:
    """The ``unnest`` arrays of :data:`_STORE_SCORES` ($1, $5…$16), one element per unit × methodology."""
    cols: list[list[Any]] = [[] for _ in range(13)]
    for unit in update.units:
        for m, s in sorted(unit.scores.items()):
            ranked = not s.provisional  # a provisional unit is never ranked, whatever an older producer sent
            for col, value in zip(
                cols,
                (
                    m,
                    unit.unit_code,
                    s.total,
                    s.grade,
                    s.rank if ranked else None,
                    s.rank_delta if ranked else None,
                    s.dossiers,
                    s.provisional,
                    orjson.dumps({g: str(p) for g, p in s.groups.items()}).decode(),
                    _INDICATORS.dump_json(s.indicators).decode(),
                    s.unit_name,
                    s.level,
                    s.parent_code,
                ),
                strict=True,
            ):
                col.append(value)
    return cols


async def on_scores_updated(message: IncomingMessage, uow: UnitOfWork) -> None:
    update = ScoresUpdated.model_validate_json(message.body)
    kind = periods.kind_of(update.period)
    if kind is None or not update.units:  # custom ranges are computed on request, never kept
        return
    m, *rest = score_columns(update)
    if not m:
        return
    conn = await driver_connection(uow.session)
    status = await conn.execute(_STORE_SCORES, m, update.period, kind, update.computed_at, *rest)
    if _written(status):
        await mark_changed(uow.session, "scores")


async def _alert(
    uow: UnitOfWork, kind: str, e: GradeChanged | ScoreDropped, previous: str, current: str, at: datetime
) -> None:
    conn = await driver_connection(uow.session)
    await conn.execute(_STORE_ALERT, kind, e.methodology, e.period, e.unit_code, previous, current, at)


async def on_score_alert(message: IncomingMessage, uow: UnitOfWork) -> None:
    if message.routing_key == GradeChanged.routing_key:
        g = GradeChanged.model_validate_json(message.body)
        await _alert(uow, "grade_change", g, g.previous_grade, g.grade, g.computed_at)
    elif message.routing_key == ScoreDropped.routing_key:
        d = ScoreDropped.model_validate_json(message.body)
        await _alert(uow, "score_drop", d, str(d.previous_total), str(d.total), d.computed_at)
    else:
        return
    await mark_changed(uow.session, "warnings")
