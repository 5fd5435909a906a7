"""Units (cơ quan thuế): the tree, its changes, and the seed from the reference data."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.ingest.adapters.tables import unit
from shared.contracts import UnitRecord, UnitsChanged
from shared.unit_of_work import UnitOfWork
from shared.web import ApiError

REORGANISATION = date(2025, 7, 1)  # the merger into 34 provincial offices took effect
BEFORE_REORGANISATION = date(2025, 6, 30)
_LEVEL_PARENT = {"central": None, "province": "central", "local": "province"}
_INTERNAL = ("updated_at", "revision")  # columns the units API does not show


def _record(row: Any) -> UnitRecord:
    return UnitRecord(
        code=row.code,
        name=row.name,
        level=row.level,
        parent_code=row.parent_code,
        valid_from=row.valid_from.isoformat() if row.valid_from else None,
        valid_to=row.valid_to.isoformat() if row.valid_to else None,
        successor_code=row.successor_code,
        revision=row.revision,
    )


async def list_units(uow: UnitOfWork) -> list[dict[str, Any]]:
    rows = (await uow.session.execute(select(unit).order_by(unit.c.code))).mappings().all()
    return [{k: v for k, v in row.items() if k not in _INTERNAL} for row in rows]


async def put_unit(code: str, fields: dict[str, Any], *, uow: UnitOfWork) -> tuple[dict[str, Any], bool]:
    """Create or change a unit; the tree must stay a tree with levels in order."""
    errors = []
    if not code or len(code) > 64 or not all(c.isalnum() or c in "._-" for c in code):
        errors.append({"field": "code", "reason": "must be 1–64 letters, digits, '.', '_' or '-'"})
    parent_code = fields.get("parent_code")
    expected_parent_level = _LEVEL_PARENT[fields["level"]]
    if expected_parent_level is None and parent_code:
        errors.append({"field": "parent_code", "reason": "the central unit has no parent"})
    if expected_parent_level is not None:
        parent = None
        if parent_code:
            parent = (await uow.session.execute(select(unit.c.level).where(unit.c.code == parent_code))).first()
        if parent is None:
            errors.append({"field": "parent_code", "reason": f"must name an existing {expected_parent_level} unit"})
        elif parent.level != expected_parent_level:
            errors.append(
                {
                    "field": "parent_code",
                    "reason": f"a {fields['level']} unit's parent must be {expected_parent_level}",
                }
            )
    if fields.get("valid_from") and fields.get("valid_to") and fields["valid_to"] < fields["valid_from"]:
        errors.append({"field": "valid_to", "reason": "must not be before valid_from"})
    successor = fields.get("successor_code")
    if successor and (await uow.session.execute(select(unit.c.code).where(unit.c.code == successor))).first() is None:
        errors.append({"field": "successor_code", "reason": "must name an existing unit"})
    if errors:
        raise ApiError(422, "the unit is not valid", details=errors)
    values = {"code": code, **fields}
    existed = (await uow.session.execute(select(unit.c.code).where(unit.c.code == code))).first() is not None
    stmt = pg_insert(unit).values(values)
    row = (
        await uow.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[unit.c.code],
                set_={**{k: stmt.excluded[k] for k in fields}, "revision": unit.c.revision + 1},
            ).returning(unit)
        )
    ).one()
    uow.publish(UnitsChanged(units=[_record(row)]))
    return {k: v for k, v in row._mapping.items() if k not in _INTERNAL}, not existed


# The five cities directly under the central government before the 2025 reorganisation.
_CITIES_BEFORE_2025 = {"Hà Nội", "Hồ Chí Minh", "Hải Phòng", "Đà Nẵng", "Cần Thơ"}


def predecessor_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 63 provincial departments before 1 July 2025, each pointing to its successor.

    Derived from ``merged_from`` in the reference data, so a period before the merger is
    reported on the units of its own time and can be mapped onto today's units.
    Codes are SQI's own: ``<successor>.T63.<n>`` keeps each one beside its successor.
    """
    out = []
    for row in rows:
        names = [n.strip() for n in (row.get("merged_from") or "").split(";") if n.strip()]
        for n, name in enumerate(names, start=1):
            kind = "Thành phố" if name in _CITIES_BEFORE_2025 else "tỉnh"
            out.append(
                {
                    "code": f"{row['code']}.T63.{n}",
                    "name": f"Cục Thuế {kind} {name}",
                    "level": "province",
                    "parent_code": row["parent_code"],
                    "valid_to": BEFORE_REORGANISATION,
                    "successor_code": row["code"],
                }
            )
    return out


async def seed_units(csv_path: Path, *, uow: UnitOfWork) -> int:
    """Insert the reference units that are missing (an admin's later edits are kept)."""
    with csv_path.open(encoding="utf-8") as fh:
        rows: list[dict[str, Any]] = [
            {
                "code": r["code"],
                "name": r["name"],
                "level": r["level"],
                "parent_code": r["parent_code"] or None,
                # The 34 provincial offices began with the merger; the central unit and the
                # large-taxpayer office carry on across it.
                "valid_from": REORGANISATION if r.get("merged_from") else None,
                "merged_from": r.get("merged_from") or None,
            }
            for r in csv.DictReader(fh)
        ]
    # Successors first: an old department names its successor, which must exist.
    inserted: list[Row[Any]] = []
    for batch in (rows, predecessor_rows(rows)):
        inserted += (
            await uow.session.execute(pg_insert(unit).values(batch).on_conflict_do_nothing().returning(unit))
        ).all()
    if inserted:
        uow.publish(UnitsChanged(units=[_record(r) for r in inserted]))
    return len(inserted)
