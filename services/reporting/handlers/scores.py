"""Scoring's ``scores-updated``, ``grade-changed`` and ``score-dropped`` into reporting's read model.

A refresh announces its changed units — hundreds per tick while events stream in — in
``scores-updated`` messages of up to fifty units. The messages in hand are one batch
(``on_score_batches``): their rows go in one prepared statement over ``unnest`` arrays on the
driver's connection, whatever the number of messages.

Reading a body is the per-row cost that is left, so the canonical body — the one scoring
announces: decimals as their text, whole counts — is read with orjson and checked field by field
(``canonical_rows``), not validated into the contract's pydantic models (≈ 20 indicators a row,
each validated and dumped again: most of the consumer's CPU, docs/performance.md). The models stay
the definition: the stored text is what they would store (``model_rows``, the reference the unit
tests compare with), and any body the check does not recognise — a malformed one, or a lax one
the models accept (numbers for decimals, an int written ``4.0``) — goes through them, so a
malformed body still fails loudly (retried, then parked).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from pydantic import TypeAdapter

from services.reporting.adapters.changes import mark_changed
from services.reporting.domain import periods
from shared.contracts.scoring import GradeChanged, IndicatorFigures, ScoreDropped, ScoresUpdated
from shared.db import driver_connection
from shared.messaging.topology import IncomingMessage, one_message
from shared.unit_of_work import UnitOfWork

_INDICATORS = TypeAdapter(list[IndicatorFigures])  # serialised in Rust, as model_dump(mode="json")

# Per unit × methodology × period. An older computation delivered late never overwrites a newer
# one (the WHERE), and a message applied twice changes nothing (the inbox; and an equal
# computed_at rewrites the same values). A statement may not touch a row twice: the batch keeps
# one row per key, the newest (on_score_batches).
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
SELECT m, pe, u, k, tot, g, r, rd, d, p, gr::jsonb, ind::jsonb, un, lv, pc, at, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::text[], $7::int[], $8::int[],
            $9::int[], $10::boolean[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
            $16::timestamptz[])
     AS t(m, u, pe, k, tot, g, r, rd, d, p, gr, ind, un, lv, pc, at)
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

Row = tuple[Any, ...]
"""One unit × methodology of a message: methodology, unit_code, total, grade, rank, rank_delta,
dossiers, provisional, groups (JSON text), indicators (JSON text), unit_name, level, parent_code."""


def _written(status: str) -> int:
    """Rows inserted or updated, from the command tag (``INSERT 0 n``)."""
    return int(status.rsplit(" ", 1)[-1])


def model_rows(update: ScoresUpdated) -> list[Row]:
    """The rows of a message validated by the contract's models: the definition of what is stored."""
    rows: list[Row] = []
    for unit in update.units:
        for m, s in sorted(unit.scores.items()):
            ranked = not s.provisional  # a provisional unit is never ranked, whatever an older producer sent
            rows.append(
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
                )
            )
    return rows


class _NotCanonical(Exception):
    """The body is not in the form the fast reading knows: the models decide."""


# Decimal text that the models store unchanged (str(Decimal(s)) == s): no exponent, no leading
# zero, no sign but minus, at most six decimals (a seventh would print as 1E-7). All the decimals
# of a message are checked at once, joined by newlines (one regex call, not one per decimal).
_DECIMAL = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]{1,6})?"
_DECIMALS = re.compile(rf"(?:{_DECIMAL}\n)*{_DECIMAL}")
# computed_at as datetime.isoformat() writes it, with an offset: fromisoformat reads it as the models do.
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_EXACT = 2**53  # a whole numerator below this becomes the same float in the models (float | None)


def _text(x: Any) -> str | None:
    if x is None or type(x) is str:
        return x
    raise _NotCanonical


def _count(x: Any) -> int | None:
    if x is None or type(x) is int:  # not bool, not 4.0: the models' lax forms go through the models
        return x
    raise _NotCanonical


def _canonical_scores(s: Any, decimals: list[str]) -> tuple[Any, ...]:
    """One methodology's figures, from total to parent_code; decimals to check appended."""
    if type(s) is not dict:
        raise _NotCanonical
    total, groups, indicators = s["total"], s.get("groups", {}), s.get("indicators", [])
    provisional = s.get("provisional", False)
    if type(groups) is not dict or type(indicators) is not list or type(provisional) is not bool:
        raise _NotCanonical
    decimals.append(total)
    decimals.extend(groups.values())
    figures = []
    for i in indicators:
        if type(i) is not dict:
            raise _NotCanonical
        ident, numerator, ratio, applicable = i["id"], i.get("numerator"), i.get("ratio"), i.get("applicable", True)
        denominator = i.get("denominator")
        if type(ident) is not str or type(applicable) is not bool:
            raise _NotCanonical
        if denominator is not None and type(denominator) is not int:  # not bool, not 4.0
            raise _NotCanonical
        if type(numerator) is int and -_EXACT < numerator < _EXACT:
            numerator = float(numerator)
        elif numerator is not None and type(numerator) is not float:
            raise _NotCanonical
        points, max_points = i["points"], i["max_points"]
        decimals += (points, max_points)
        if ratio is not None:
            decimals.append(ratio)
        figures.append(
            {
                "id": ident,
                "numerator": numerator,
                "denominator": denominator,
                "ratio": ratio,
                "points": points,
                "max_points": max_points,
                "applicable": applicable,
            }
        )
    rank, rank_delta = _count(s["rank"]), _count(s.get("rank_delta"))
    if provisional:
        rank = rank_delta = None
    grade, dossiers = s["grade"], s["dossiers"]
    if type(grade) is not str or type(dossiers) is not int:
        raise _NotCanonical
    return (
        total,
        grade,
        rank,
        rank_delta,
        dossiers,
        provisional,
        orjson.dumps(groups).decode(),
        orjson.dumps(figures).decode(),
        _text(s.get("unit_name")),
        _text(s.get("level")),
        _text(s.get("parent_code")),
    )


def canonical_rows(body: bytes) -> tuple[str, datetime, list[Row]] | None:
    """The period, computed_at and rows of a body in scoring's canonical form, as
    :func:`model_rows` would make them; None for any other body (the models decide)."""
    try:
        doc = orjson.loads(body)
        period, at, units = doc["period"], doc["computed_at"], doc["units"]
        if type(period) is not str or type(at) is not str or type(units) is not list or not _INSTANT.fullmatch(at):
            return None
        rows: list[Row] = []
        decimals: list[str] = []
        for unit in units:
            code, scores = unit["unit_code"], unit["scores"]
            if type(code) is not str or type(scores) is not dict:
                return None
            for m in sorted(scores):
                rows.append((m, code, *_canonical_scores(scores[m], decimals)))
        joined = "\n".join(decimals)  # TypeError on a non-text; a newline inside one shows in the count
        if decimals and (joined.count("\n") != len(decimals) - 1 or not _DECIMALS.fullmatch(joined)):
            return None
        computed_at = datetime.fromisoformat(at)
    except (_NotCanonical, orjson.JSONDecodeError, LookupError, TypeError, ValueError):
        return None
    return period, computed_at, [(r[0], r[1], Decimal(r[2]), *r[3:]) for r in rows]


def _read(body: bytes) -> tuple[str, datetime, list[Row]]:
    fast = canonical_rows(body)
    if fast is not None:
        return fast
    update = ScoresUpdated.model_validate_json(body)  # a malformed body fails here
    return update.period, update.computed_at, model_rows(update)


async def on_score_batches(messages: list[IncomingMessage], uow: UnitOfWork) -> None:
    """Every score row of the messages in one statement; of two rows with the same key (two
    refreshes of a period in hand together) the newer computation, or the later delivery."""
    newest: dict[tuple[str, str, str], tuple[Row, str, str, datetime]] = {}
    for message in messages:
        period, at, rows = _read(message.body)
        kind = periods.kind_of(period)
        if kind is None:  # custom ranges are computed on request, never kept
            continue
        for row in rows:
            key = (row[0], period, row[1])
            held = newest.get(key)
            if held is None or held[3] <= at:
                newest[key] = (row, period, kind, at)
    if not newest:
        return
    columns: list[list[Any]] = [[] for _ in range(16)]
    for key in sorted(newest):  # rows in key order: two transactions lock them in the same order
        row, period, kind, at = newest[key]
        for col, value in zip(columns, (row[0], row[1], period, kind, *row[2:], at), strict=True):
            col.append(value)
    conn = await driver_connection(uow.session)
    if _written(await conn.execute(_STORE_SCORES, *columns)):
        await mark_changed(uow.session, "scores")


on_scores_updated = one_message(on_score_batches)  # one message: the batch of it alone (tests, replays)


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
