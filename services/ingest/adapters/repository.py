"""Bulk SQL for ingest: one statement per batch, never one per row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.adapters.tables import SCHEMA, dossier, procedure, unit
from services.ingest.domain.units import Unit


async def claim_event_keys(
    conn: asyncpg.Connection,
    source: str,
    event_ids: Sequence[str],
    hashes: Sequence[bytes],
    receipts: Sequence[tuple[str, str, str, datetime, str]] = (),
) -> tuple[set[str], set[str]]:
    """Insert the keys and record the owners of the receipts' dossiers, in one statement.

    ``receipts`` are (dossier id, unit code, source, received at, event id): only those whose
    event key is new claim their dossier, the first of a dossier in the list winning (the
    first receipt wins). Returns the event ids that are new
    (the rest were already known) and the dossier ids recorded now; a dossier not recorded
    was recorded before, or meanwhile by a concurrent request (this insert waits for it):
    the caller checks that it is the same owner.
    """
    columns = list(zip(*receipts, strict=True)) if receipts else [(), (), (), (), ()]
    rows = await conn.fetch(
        f"""WITH claimed AS (
              INSERT INTO {SCHEMA}.event_key (source, event_id, body_hash)
              SELECT $1, k, h FROM unnest($2::text[], $3::bytea[]) AS t(k, h)
              ON CONFLICT DO NOTHING RETURNING event_id
            ), owned AS (
              INSERT INTO {SCHEMA}.dossier (dossier_id, unit_code, source, received_at)
              SELECT DISTINCT ON (r.d) r.d, r.u, r.s, r.t
              FROM unnest($4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[])
                   WITH ORDINALITY AS r(d, u, s, t, e, n)
              WHERE r.e IN (SELECT event_id FROM claimed)
              ORDER BY r.d, r.n
              ON CONFLICT (dossier_id) DO NOTHING RETURNING dossier_id
            )
            SELECT event_id, NULL AS dossier_id FROM claimed
            UNION ALL SELECT NULL, dossier_id FROM owned""",
        source,
        list(event_ids),
        list(hashes),
        *(list(c) for c in columns),
    )
    new_ids = {r["event_id"] for r in rows if r["event_id"] is not None}
    return new_ids, {r["dossier_id"] for r in rows if r["dossier_id"] is not None}


async def known_hashes(conn: asyncpg.Connection, source: str, event_ids: Sequence[str]) -> dict[str, bytes]:
    rows = await conn.fetch(
        f"SELECT event_id, body_hash FROM {SCHEMA}.event_key WHERE source = $1 AND event_id = ANY($2::text[])",
        source,
        list(event_ids),
    )
    return {r["event_id"]: bytes(r["body_hash"]) for r in rows}


async def append_events(conn: asyncpg.Connection, records: Sequence[tuple[Any, ...]]) -> None:
    """COPY into the partitioned raw log: (source, event_id, type, occurred_at, accepted_at, dossier_id, body)."""
    await conn.copy_records_to_table(
        "event_log",
        schema_name=SCHEMA,
        columns=["source", "event_id", "type", "occurred_at", "accepted_at", "dossier_id", "body"],
        records=records,
    )


async def dossier_owners(conn: asyncpg.Connection, dossier_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """dossier id → (unit code, source) of its first receipt: one query for a whole request."""
    if not dossier_ids:
        return {}
    rows = await conn.fetch(
        f"SELECT dossier_id, unit_code, source FROM {SCHEMA}.dossier WHERE dossier_id = ANY($1::text[])",
        list(set(dossier_ids)),
    )
    return {r["dossier_id"]: (r["unit_code"], r["source"]) for r in rows}


async def release_event_keys(conn: asyncpg.Connection, source: str, event_ids: Sequence[str]) -> None:
    """Give back keys claimed in this transaction for events finally refused."""
    if event_ids:
        await conn.execute(
            f"DELETE FROM {SCHEMA}.event_key WHERE source = $1 AND event_id = ANY($2::text[])",
            source,
            list(event_ids),
        )


async def upsert_procedures(conn: asyncpg.Connection, rows: Sequence[tuple[str, str, datetime, str]]) -> None:
    """The latest publication by occurred_at wins, whatever the arrival order."""
    if not rows:
        return
    codes, names, times, bodies = zip(*rows, strict=True)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.procedure AS p (procedure_code, name, occurred_at, body)
            SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[])
            ON CONFLICT (procedure_code) DO UPDATE
              SET name = excluded.name, occurred_at = excluded.occurred_at, body = excluded.body
              WHERE excluded.occurred_at > p.occurred_at""",
        list(codes),
        list(names),
        list(times),
        list(bodies),
    )


async def record_feed(
    conn: asyncpg.Connection,
    *,
    source: str,
    day: date,
    now: datetime,
    accepted: int,
    duplicates: int,
    rejected: int,
    last_event_at: datetime | None,
    reasons: dict[str, int],
) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.feed_day AS f
              (source, day, requests, accepted, duplicates, rejected, last_event_at, last_request_at)
            VALUES ($1, $2, 1, $3, $4, $5, $6, $7)
            ON CONFLICT (source, day) DO UPDATE SET
              requests = f.requests + 1,
              accepted = f.accepted + excluded.accepted,
              duplicates = f.duplicates + excluded.duplicates,
              rejected = f.rejected + excluded.rejected,
              last_event_at = greatest(f.last_event_at, excluded.last_event_at),
              last_request_at = excluded.last_request_at""",
        source,
        day,
        accepted,
        duplicates,
        rejected,
        last_event_at,
        now,
    )
    if reasons:
        await conn.execute(
            f"""INSERT INTO {SCHEMA}.feed_reason AS r (source, day, reason, count)
                SELECT $1, $2, * FROM unnest($3::text[], $4::int[])
                ON CONFLICT (source, day, reason) DO UPDATE SET count = r.count + excluded.count""",
            source,
            day,
            list(reasons),
            list(reasons.values()),
        )


async def load_units(session: AsyncSession) -> dict[str, Unit]:
    rows = (
        await session.execute(
            select(
                unit.c.code,
                unit.c.name,
                unit.c.level,
                unit.c.parent_code,
                unit.c.valid_from,
                unit.c.valid_to,
                unit.c.successor_code,
            )
        )
    ).all()
    return {
        r.code: Unit(r.code, r.name, r.level, r.parent_code, r.valid_from, r.valid_to, r.successor_code) for r in rows
    }


async def load_procedure_codes(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(procedure.c.procedure_code))).scalars())


async def dossier_unit(session: AsyncSession, dossier_id: str) -> str | None:
    return (
        await session.execute(select(dossier.c.unit_code).where(dossier.c.dossier_id == dossier_id))
    ).scalar_one_or_none()
