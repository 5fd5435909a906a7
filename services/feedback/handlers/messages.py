"""What feedback consumes: ingest's unit tree and which unit answers for each dossier."""

from __future__ import annotations

import csv
import logging
from datetime import UTC, date, datetime
from pathlib import Path

from services.feedback.adapters.tables import unit
from services.feedback.domain.dossiers import merged_moves, unit_moves
from services.feedback.handlers.ratings import apply_held_ratings
from shared.db import driver_connection
from shared.messaging.topology import IncomingMessage, one_message
from shared.unit_copy import units_changed_handler, upsert_units
from shared.unit_of_work import UnitOfWork

REORGANISATION = date(2025, 7, 1)  # the reference tree holds from the 2025 merger
log = logging.getLogger(__name__)


on_units_changed = units_changed_handler(unit)


# One statement for the whole batch: the latest unit (an older event never overwrites a newer one,
# whatever the delivery order; at the same instant the later batch wins) and the owner (the first
# receiving unit, never overwritten). A row whose facts do not change is not rewritten. It answers
# the dossiers this statement created (xmax = 0 marks an inserted row, not an updated one), with
# the owner the first message naming each saw ($5, UnitMoves.first_owners: the stored row holds
# the batch's outcome, which for a dossier with no receipt is its latest unit): only they can
# have ratings held for them (see apply_held_ratings).
_UPSERT_DOSSIER_UNITS = """
WITH up AS (
INSERT INTO feedback.dossier_unit AS du (dossier_id, unit_code, occurred_at, owner_unit_code)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])
ON CONFLICT (dossier_id) DO UPDATE SET
    unit_code = CASE WHEN du.occurred_at <= excluded.occurred_at THEN excluded.unit_code ELSE du.unit_code END,
    occurred_at = GREATEST(du.occurred_at, excluded.occurred_at),
    owner_unit_code = COALESCE(du.owner_unit_code, excluded.owner_unit_code)
WHERE du.occurred_at < excluded.occurred_at
   OR (du.occurred_at = excluded.occurred_at AND du.unit_code <> excluded.unit_code)
   OR (du.owner_unit_code IS NULL AND excluded.owner_unit_code IS NOT NULL)
RETURNING dossier_id, xmax = 0 AS created
)
SELECT up.dossier_id, f.owner FROM up JOIN unnest($1::text[], $5::text[]) AS f(dossier_id, owner) USING (dossier_id)
WHERE up.created
"""


async def on_dossier_batches(messages: list[IncomingMessage], uow: UnitOfWork) -> None:
    """Keep dossier → unit (received at, or transferred to; the latest event wins) and its owner:
    one upsert for every message of the transaction (their moves merged in delivery order)."""
    moves = merged_moves([unit_moves(m.body) for m in messages])
    if moves.skipped:
        log.warning("malformed dossier events skipped", extra={"skipped": moves.skipped})
    if not moves.latest:
        return
    # Rows in one order (by dossier id): two batches upserting overlapping dossiers then lock
    # them in the same order and cannot deadlock.
    ids = sorted(moves.latest)
    latest, receivers = moves.latest, moves.receivers
    conn = await driver_connection(uow.session)
    created = await conn.fetch(
        _UPSERT_DOSSIER_UNITS,
        ids,
        [latest[d][1] for d in ids],
        [latest[d][0] for d in ids],
        [receivers.get(d) for d in ids],
        [moves.first_owners[d] for d in ids],
    )
    if created:
        await apply_held_ratings({r["dossier_id"]: r["owner"] for r in created}, uow=uow, now=datetime.now(UTC))


on_dossier_events = one_message(on_dossier_batches)  # one message: the batch of it alone (tests, replays)


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
