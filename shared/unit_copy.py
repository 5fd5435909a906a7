"""A service's own copy of the unit tree (cây đơn vị), kept from ``UnitsChanged`` events.

Every service that needs units keeps them in its own schema (no service reads another's), in a
table of the same columns: code, name, level, parent_code, valid_from, valid_to,
successor_code, revision. This is the one way to write that copy. A record older than the one
held (a lower ``revision``: a message retried after a later one) changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.contracts import UnitRecord, UnitsChanged
from shared.messaging.topology import IncomingMessage
from shared.unit_of_work import UnitOfWork

COLUMNS = ("name", "level", "parent_code", "valid_from", "valid_to", "successor_code", "revision")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def unit_rows(units: Iterable[UnitRecord]) -> list[dict[str, Any]]:
    """Table rows of ``units``, in code order (so concurrent writers lock rows in one order)."""
    return [
        {
            "code": u.code,
            "name": u.name,
            "level": u.level,
            "parent_code": u.parent_code,
            "valid_from": _date(u.valid_from),
            "valid_to": _date(u.valid_to),
            "successor_code": u.successor_code,
            "revision": u.revision,
        }
        for u in sorted(units, key=lambda u: u.code)
    ]


async def upsert_units(table: Table, rows: list[dict[str, Any]], *, uow: UnitOfWork, overwrite: bool = True) -> None:
    """Write ``rows`` over units of the same or an older revision; ``overwrite=False`` only fills
    in units not known yet (reference seeding)."""
    if not rows:
        return
    stmt = pg_insert(table).values(rows)
    if overwrite:
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.code],
            set_={c: stmt.excluded[c] for c in COLUMNS},
            where=table.c.revision <= stmt.excluded.revision,
        )
    else:
        stmt = stmt.on_conflict_do_nothing()
    await uow.session.execute(stmt)


def units_changed_handler(table: Table) -> Callable[[IncomingMessage, UnitOfWork], Awaitable[None]]:
    """The consumer handler that keeps ``table`` equal to the unit tree ingest announces."""

    async def on_units_changed(message: IncomingMessage, uow: UnitOfWork) -> None:
        event = UnitsChanged.model_validate_json(message.body)
        await upsert_units(table, unit_rows(event.units), uow=uow)

    return on_units_changed
