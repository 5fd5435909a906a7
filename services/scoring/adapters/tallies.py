"""Stored counters per unit × period (and unit × procedure × period), kept by verdict differences.

A period's counts used to be SQL sums over all of its contributions at every refresh (≈ 1 s for
a national month, more for its quarter and year). Now the judging transaction that replaces a
dossier's contributions also applies the difference — the old rows' counts out, the new rows'
in — to two counter tables, so a refresh reads a few rows per unit, whatever the period's size:

- ``scoring.unit_tally``: per (period, unit as judged) the count of contributions carrying each
  flag combination of :data:`SUMS`, the dossiers that ended and their handling days;
- ``scoring.unit_procedure_tally``: per (period, unit, procedure) the handled dossiers carrying
  each bit of :data:`PROCEDURE_BITS` — the distinct-procedure indicators (3.6, 4.2, 4.4, 4.5)
  need "≥ 1 dossier of the procedure with the bit", which a count keeps under removal (a
  ``bit_or`` cannot be decremented).

Exactness: the counters equal the sums over the contributions (:func:`drift` checks it, the
tests assert zero drift), and the scores built from them equal a from-scratch evaluation
(``./sqi recompute``). Rows are upserted in key order, so two judging transactions cannot
deadlock on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from services.scoring.domain.contributions import Contribution
from services.scoring.domain.definitions import (
    DEFINITIONS,
    DOSSIER_RATIOS,
    ENDED,
    ENDED_DAYS,
    HANDLED,
    PROCEDURE_BITS,
    RECEIVED,
    SUMS,
    Counter,
    Kind,
)

H, R = HANDLED.mask, RECEIVED.mask
# The counters, the dossier-count computations and the procedure bits, all derived from the
# indicator declarations (domain/definitions.py): name → the flags a contribution must all carry.
UNIT_COLUMNS = (*SUMS, ENDED, ENDED_DAYS)


def shortfall_flags(basis: str) -> tuple[int, int] | None:
    """(flags a contribution must carry, flags it must lack) to cost points on ``basis`` (a
    dossier ratio; 5.4: :func:`shortfall_condition`)."""
    ratio = DOSSIER_RATIOS.get(basis)
    if ratio is None:
        return None
    numerator, denominator = SUMS[ratio[0]], SUMS[ratio[1]]
    return denominator, numerator & ~denominator


def shortfall_condition(basis: str, alias: str) -> str | None:
    """The SQL condition on ``alias.flags`` of a contribution that costs points on ``basis``
    (None: not a per-dossier shortfall). 5.4: in the denominator and either lacking the
    numerator's flags (overdue) or carrying its exception's (excepted by citizens' feedback)."""
    d = DEFINITIONS.get(basis)
    if d is not None and d.kind is Kind.RATING and d.excepted is not None:
        need = SUMS[d.denominator.column] if isinstance(d.denominator, Counter) else 0
        lack = SUMS[d.numerator.column] & ~need if isinstance(d.numerator, Counter) else 0
        extra = d.excepted.mask & ~(need | lack)
        f = f"{alias}.flags"
        return f"{f} & {need} = {need} AND ({f} & {lack} <> {lack} OR {f} & {extra} = {extra})"
    flags = shortfall_flags(basis)
    if flags is None:
        return None
    need, lack = flags
    return f"{alias}.flags & {need} = {need} AND {alias}.flags & {lack} = 0"


PROCEDURE_COLUMNS = ("handled", *PROCEDURE_BITS)

UnitKey = tuple[str, str]  # period, unit_code
ProcedureKey = tuple[str, str, str]  # period, unit_code, procedure_code


@lru_cache(maxsize=65536)
def _unit_flags(flags: int) -> tuple[int, ...]:
    """Indices of the :data:`SUMS` a contribution with ``flags`` counts in (few distinct flags)."""
    return tuple(i for i, m in enumerate(SUMS.values()) if flags & m == m)


@lru_cache(maxsize=65536)
def _procedure_flags(flags: int) -> tuple[int, ...]:
    """Indices of :data:`PROCEDURE_COLUMNS` a handled contribution with ``flags`` counts in."""
    return (0, *(i + 1 for i, b in enumerate(PROCEDURE_BITS.values()) if flags & b))


_ENDED, _DAYS = len(SUMS), len(SUMS) + 1


def deltas(
    removed: Iterable[Contribution], added: Iterable[Contribution]
) -> tuple[dict[UnitKey, list[int]], dict[ProcedureKey, list[int]]]:
    """The counter differences of replacing ``removed`` by ``added`` (zero rows dropped)."""
    units: dict[UnitKey, list[int]] = defaultdict(lambda: [0] * len(UNIT_COLUMNS))
    procs: dict[ProcedureKey, list[int]] = defaultdict(lambda: [0] * len(PROCEDURE_COLUMNS))
    for sign, rows in ((-1, removed), (1, added)):
        for c in rows:
            u = units[(c.period, c.unit_code)]
            for i in _unit_flags(c.flags):
                u[i] += sign
            if c.flags & H:
                if c.handling_days is not None:
                    u[_ENDED] += sign
                    u[_DAYS] += sign * c.handling_days
                p = procs[(c.period, c.unit_code, c.procedure_code)]
                for i in _procedure_flags(c.flags):
                    p[i] += sign
    return (
        {k: v for k, v in units.items() if any(v)},
        {k: v for k, v in procs.items() if any(v)},
    )


def _upsert(table: str, keys: tuple[str, ...], columns: tuple[str, ...]) -> str:
    n = len(keys)
    args = ", ".join(
        [*(f"${i + 1}::text[]" for i in range(n)), *(f"${n + i + 1}::bigint[]" for i in range(len(columns)))]
    )
    names = ", ".join((*keys, *columns))
    sets = ", ".join(f"{c} = t.{c} + excluded.{c}" for c in columns)
    return (
        f"INSERT INTO scoring.{table} AS t ({names}) SELECT * FROM unnest({args}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    )


_UNIT_UPSERT = _upsert("unit_tally", ("period", "unit_code"), UNIT_COLUMNS)
_PROCEDURE_UPSERT = _upsert("unit_procedure_tally", ("period", "unit_code", "procedure_code"), PROCEDURE_COLUMNS)


async def apply_deltas(conn: Any, removed: Iterable[Contribution], added: Iterable[Contribution]) -> None:
    """Apply the difference to the counters (asyncpg connection, inside the judging transaction)."""
    units, procs = deltas(removed, added)
    for sql, rows in ((_UNIT_UPSERT, units), (_PROCEDURE_UPSERT, procs)):
        if not rows:
            continue
        ordered = sorted(rows.items())  # one lock order for every transaction
        width = len(ordered[0][0])
        key_cols = [[k[i] for k, _ in ordered] for i in range(width)]
        value_cols = [[v[i] for _, v in ordered] for i in range(len(ordered[0][1]))]
        await conn.execute(sql, *key_cols, *value_cols)


UNIT_SQL = f"SELECT unit_code, {', '.join(UNIT_COLUMNS)} FROM scoring.unit_tally WHERE period = $1"
PROCEDURE_SQL = (
    f"SELECT unit_code, procedure_code, {', '.join(PROCEDURE_COLUMNS)} "
    "FROM scoring.unit_procedure_tally WHERE period = $1 AND handled > 0"
)


def procedure_flags(row: Any) -> int:
    """A procedure-tally row as the ``bit_or`` of its handled contributions' bits."""
    out = H
    for name, bit in PROCEDURE_BITS.items():
        if row[name] > 0:
            out |= bit
    return out


_DRIFT_UNITS = f"""
WITH s AS (
    SELECT period, unit_code,
        {", ".join(f"count(*) FILTER (WHERE flags & {m} = {m}) AS {n}" for n, m in SUMS.items())},
        count(handling_days) FILTER (WHERE flags & {H} <> 0) AS ended,
        coalesce(sum(handling_days) FILTER (WHERE flags & {H} <> 0), 0) AS ended_days
    FROM scoring.contribution GROUP BY period, unit_code
)
SELECT coalesce(s.period, t.period), coalesce(s.unit_code, t.unit_code)
FROM s FULL JOIN scoring.unit_tally t ON t.period = s.period AND t.unit_code = s.unit_code
WHERE {" OR ".join(f"coalesce(s.{c}, 0) <> coalesce(t.{c}, 0)" for c in UNIT_COLUMNS)}
"""
_DRIFT_PROCEDURES = f"""
WITH s AS (
    SELECT period, unit_code, procedure_code, count(*) AS handled,
        {", ".join(f"count(*) FILTER (WHERE flags & {b} <> 0) AS {n}" for n, b in PROCEDURE_BITS.items())}
    FROM scoring.contribution WHERE flags & {H} <> 0 GROUP BY period, unit_code, procedure_code
)
SELECT coalesce(s.period, t.period), coalesce(s.unit_code, t.unit_code), coalesce(s.procedure_code, t.procedure_code)
FROM s FULL JOIN scoring.unit_procedure_tally t
    ON t.period = s.period AND t.unit_code = s.unit_code AND t.procedure_code = s.procedure_code
WHERE {" OR ".join(f"coalesce(s.{c}, 0) <> coalesce(t.{c}, 0)" for c in PROCEDURE_COLUMNS)}
"""


async def drift(conn: Any) -> list[tuple[str, ...]]:
    """Counter rows that differ from the sums over the contributions (empty: exact)."""
    return [tuple(r) for r in await conn.fetch(_DRIFT_UNITS)] + [tuple(r) for r in await conn.fetch(_DRIFT_PROCEDURES)]


BACKFILL_SQL = (
    f"""
INSERT INTO scoring.unit_tally (period, unit_code, {", ".join(UNIT_COLUMNS)})
SELECT period, unit_code,
    {", ".join(f"count(*) FILTER (WHERE flags & {m} = {m})" for m in SUMS.values())},
    count(handling_days) FILTER (WHERE flags & {H} <> 0),
    coalesce(sum(handling_days) FILTER (WHERE flags & {H} <> 0), 0)
FROM scoring.contribution GROUP BY period, unit_code
""",
    f"""
INSERT INTO scoring.unit_procedure_tally (period, unit_code, procedure_code, {", ".join(PROCEDURE_COLUMNS)})
SELECT period, unit_code, procedure_code, count(*),
    {", ".join(f"count(*) FILTER (WHERE flags & {b} <> 0)" for b in PROCEDURE_BITS.values())}
FROM scoring.contribution WHERE flags & {H} <> 0 GROUP BY period, unit_code, procedure_code
""",
)
