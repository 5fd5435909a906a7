"""What feedback consumes: ingest's unit tree and which unit answers for each dossier."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import bindparam, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.feedback.adapters import repository
from services.feedback.adapters.tables import dossier_unit, unit
from services.feedback.handlers.ratings import apply_held_ratings
from shared.contracts import DossierEventsAccepted
from shared.messaging.topology import IncomingMessage
from shared.unit_copy import units_changed_handler, upsert_units
from shared.unit_of_work import UnitOfWork

REORGANISATION = date(2025, 7, 1)  # the reference tree holds from the 2025 merger


on_units_changed = units_changed_handler(unit)


async def on_dossier_events(message: IncomingMessage, uow: UnitOfWork) -> None:
    """Keep dossier → unit (received at, or transferred to; the latest event wins)."""
    batch = DossierEventsAccepted.model_validate_json(message.body)
    latest: dict[str, tuple[datetime, str]] = {}
    receivers: dict[str, str] = {}
    for e in batch.events:
        dossier_id = e.data.get("dossier_id")
        if e.type == "dossier.received":
            code = e.data.get("unit_code")
            if isinstance(dossier_id, str) and isinstance(code, str):
                receivers.setdefault(dossier_id, code)
        elif e.type == "dossier.transferred":
            code = e.data.get("to_unit_code")
        else:
            continue
        if not isinstance(dossier_id, str) or not isinstance(code, str):
            continue
        at = datetime.fromisoformat(e.occurred_at)
        if dossier_id not in latest or latest[dossier_id] < (at, code):
            latest[dossier_id] = (at, code)
    # Rows in one order (by dossier id): two batches upserting overlapping dossiers then lock
    # them in the same order and cannot deadlock.
    rows = [
        {"dossier_id": d, "unit_code": c, "occurred_at": at, "owner_unit_code": receivers.get(d)}
        for d, (at, c) in sorted(latest.items())
    ]
    if not rows:
        return
    session = uow.session
    stmt = pg_insert(dossier_unit).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[dossier_unit.c.dossier_id],
            set_={"unit_code": stmt.excluded.unit_code, "occurred_at": stmt.excluded.occurred_at},
            # Out-of-order delivery: an older event never overwrites a newer one.
            where=dossier_unit.c.occurred_at <= stmt.excluded.occurred_at,
        )
    )
    if receivers:
        # The receiving unit owns the dossier, whatever the order of its events (ingest lets
        # only one unit receive a dossier, so the first value seen is the only one).
        await session.execute(
            update(dossier_unit)
            .where(dossier_unit.c.dossier_id == bindparam("d"), dossier_unit.c.owner_unit_code.is_(None))
            .values(owner_unit_code=bindparam("u")),
            [{"d": d, "u": u} for d, u in sorted(receivers.items())],
        )
    owners = await repository.dossier_owners(session, sorted(latest))
    await apply_held_ratings(owners, uow=uow, now=datetime.now(UTC))


async def seed_reference_units(csv_path: Path, *, uow: UnitOfWork) -> None:
    """Insert the reference units that are missing, so a fresh deployment can take petitions
    before ingest's first UnitsChanged arrives; what ingest sends later wins."""
    with csv_path.open(encoding="utf-8") as fh:
        rows = [
            {
                "code": r["code"],
                "name": r["name"],
                "level": r["level"],
                "parent_code": r["parent_code"] or None,
                "valid_from": REORGANISATION,
                "valid_to": None,
                "successor_code": None,
            }
            for r in csv.DictReader(fh)
        ]
    await upsert_units(unit, rows, uow=uow, overwrite=False)
