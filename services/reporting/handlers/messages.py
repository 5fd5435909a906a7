"""What reporting consumes, each message applied as one batch in one transaction.

- scoring's ``scores-updated`` (every methodology of up to fifty units × a period), ``grade-changed`` and
  ``score-dropped``: ``handlers.scores``;
- ingest's dossier events (open dossiers, due times, officers; feed activity per source):
  ``handlers.dossier_events``; its procedure events (legal time limits) and unit changes;
- scoring's ``calendar-changed`` (admin-declared days): due times of open dossiers refolded;
- feedback's ``petition-changed``: the latest version of each petition (no personal data).
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.reporting.adapters.calendar import declared_days, hold_calendar, working_calendar
from services.reporting.adapters.changes import mark_changed
from services.reporting.adapters.tables import (
    calendar,
    dossier,
    petition,
    procedure,
    unit,
)
from services.reporting.domain.dossiers import (
    DossierEvent,
    DossierState,
    from_json,
    refold,
)
from services.reporting.handlers.dossier_events import on_dossier_events as on_dossier_events  # re-exported
from services.reporting.handlers.scores import on_score_alert as on_score_alert  # re-exported
from services.reporting.handlers.scores import on_scores_updated as on_scores_updated  # re-exported
from shared.calendar import WorkingCalendar
from shared.contracts import ProcedureEventsAccepted
from shared.contracts.feedback import PetitionChanged
from shared.contracts.scoring import CalendarChanged
from shared.messaging.topology import IncomingMessage
from shared.unit_copy import units_changed_handler, upsert_units
from shared.unit_of_work import UnitOfWork

REORGANISATION = date(2025, 7, 1)  # the reference tree holds from the 2025 merger


# --- dossiers and feeds ---------------------------------------------------------------------
# A batch of dossier events: handlers.dossier_events (written for cost per event). Here: the
# refold of every open dossier when the declared days change.

STATE_COLUMNS = tuple(f for f in DossierState.__dataclass_fields__ if f != "dossier_id")


async def _time_limits(uow: UnitOfWork, codes: set[str]) -> dict[str, int | None]:
    if not codes:
        return {}
    rows = await uow.session.execute(
        select(procedure.c.procedure_code, procedure.c.time_limit_wd).where(procedure.c.procedure_code.in_(codes))
    )
    return {r.procedure_code: r.time_limit_wd for r in rows}


def _procedure_codes(events: Iterable[DossierEvent]) -> set[str]:
    return {str(e.data["procedure_code"]) for e in events if isinstance(e.data.get("procedure_code"), str)}


async def _store_dossiers(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    stmt = pg_insert(dossier).values(rows)
    columns = [*STATE_COLUMNS, "history"] if "history" in rows[0] else list(STATE_COLUMNS)
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[dossier.c.dossier_id],
            set_={c: stmt.excluded[c] for c in columns} | {"updated_at": func.now()},
        )
    )


REFOLD_CHUNK = 2_000


async def refold_open_dossiers(
    uow: UnitOfWork, calendar: WorkingCalendar, *, procedures: Collection[str] | None = None
) -> int:
    """Every open dossier (of these ``procedures``, or all) refolded with ``calendar`` and today's
    time limits; returns how many changed (due times). Open dossiers' stored states thus stay
    those a refold would give, which lets a batch fold later events onto them (``folds_on``)."""
    changed = 0
    after = ""
    while True:
        query = select(dossier).where(
            dossier.c.finished_at.is_(None), dossier.c.history.is_not(None), dossier.c.dossier_id > after
        )
        if procedures is not None:
            query = query.where(dossier.c.procedure_code.in_(sorted(procedures)))
        chunk = (await uow.session.execute(query.order_by(dossier.c.dossier_id).limit(REFOLD_CHUNK))).all()
        if not chunk:
            return changed
        after = chunk[-1].dossier_id
        histories = {r.dossier_id: from_json(r.dossier_id, r.history) for r in chunk}
        limits = await _time_limits(uow, {c for h in histories.values() for c in _procedure_codes(h)})
        rows = []
        for r in chunk:
            state = refold(r.dossier_id, histories[r.dossier_id], time_limits=limits, calendar=calendar)
            if any(getattr(state, c) != getattr(r, c) for c in STATE_COLUMNS):
                rows.append(asdict(state))
        if rows:
            await _store_dossiers(uow, rows)
            changed += len(rows)


async def on_calendar_changed(message: IncomingMessage, uow: UnitOfWork) -> None:
    """Keep the latest declared set; refold the open dossiers' due times with it when it differs
    from the set held (scoring announces the set again at each start: that refolds nothing)."""
    event = CalendarChanged.model_validate_json(message.body)
    await hold_calendar(uow.session, exclusive=True)  # no dossier batch folds meanwhile
    days = [{"day": d.day.isoformat(), "kind": d.kind} for d in sorted(event.days, key=lambda d: d.day)]
    held = (await uow.session.execute(select(calendar.c.days).where(calendar.c.id == 1))).scalar_one_or_none()
    stmt = pg_insert(calendar).values(id=1, days=days, changed_at=event.changed_at)
    result = await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[calendar.c.id],
            set_={"days": stmt.excluded.days, "changed_at": stmt.excluded.changed_at},
            where=calendar.c.changed_at < stmt.excluded.changed_at,  # an older set delivered late loses
        )
    )
    if not getattr(result, "rowcount", 1) or days == (held or []):
        return
    await refold_open_dossiers(uow, working_calendar(frozenset((d.day, d.kind) for d in event.days)))
    await mark_changed(uow.session, "warnings")


# --- petitions ------------------------------------------------------------------------------

PETITION_COLUMNS = tuple(c.name for c in petition.columns if c.name != "petition_id")


async def on_petition_changed(message: IncomingMessage, uow: UnitOfWork) -> None:
    """The latest version of a petition wins; an older one delivered late changes nothing."""
    e = PetitionChanged.model_validate_json(message.body)
    row = {"petition_id": e.petition_id} | {c: getattr(e, c) for c in PETITION_COLUMNS}
    stmt = pg_insert(petition).values(row)
    result = await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[petition.c.petition_id],
            set_={c: stmt.excluded[c] for c in PETITION_COLUMNS},
            where=petition.c.version < stmt.excluded.version,
        )
    )
    if getattr(result, "rowcount", 1):
        await mark_changed(uow.session, "warnings")


# --- reference data: procedures and units ---------------------------------------------------


async def upsert_procedures(rows: list[dict[str, Any]], *, uow: UnitOfWork, overwrite: bool = True) -> None:
    if not rows:
        return
    stmt = pg_insert(procedure).values(rows)
    if overwrite:
        stmt = stmt.on_conflict_do_update(
            index_elements=[procedure.c.procedure_code],
            set_={c: stmt.excluded[c] for c in ("name", "time_limit_wd", "occurred_at")},
            # The latest version by occurred_at wins (events.md); the seed has no time and loses.
            where=func.coalesce(procedure.c.occurred_at, text("'-infinity'::timestamptz")) <= stmt.excluded.occurred_at,
        )
    else:
        stmt = stmt.on_conflict_do_nothing()
    await uow.session.execute(stmt)


async def on_procedure_events(message: IncomingMessage, uow: UnitOfWork) -> None:
    batch = ProcedureEventsAccepted.model_validate_json(message.body)
    latest: dict[str, dict[str, Any]] = {}
    for r in batch.events:
        code, at = r.data.get("procedure_code"), datetime.fromisoformat(r.occurred_at)
        if not isinstance(code, str):
            continue
        limit = r.data.get("time_limit_wd")
        row = {
            "procedure_code": code,
            "name": str(r.data.get("name") or code),
            "time_limit_wd": limit if isinstance(limit, int) else None,
            "occurred_at": at,
        }
        if code not in latest or latest[code]["occurred_at"] <= at:
            latest[code] = row
    if not latest:
        return
    # No dossier batch folds with the old limits meanwhile (batches share this lock).
    await hold_calendar(uow.session, exclusive=True)
    before = await _time_limits(uow, set(latest))
    await upsert_procedures([latest[c] for c in sorted(latest)], uow=uow)
    after = await _time_limits(uow, set(latest))
    changed = {c for c, limit in after.items() if c not in before or before[c] != limit}
    if changed:
        cal = working_calendar(await declared_days(uow.session))
        if await refold_open_dossiers(uow, cal, procedures=changed):
            await mark_changed(uow.session, "warnings")


_store_units = units_changed_handler(unit)


async def on_units_changed(message: IncomingMessage, uow: UnitOfWork) -> None:
    await _store_units(message, uow)
    await mark_changed(uow.session, "units")  # names and the tree are on the public pages


async def seed_reference(reference_dir: Path, *, uow: UnitOfWork) -> None:
    """Insert reference units and procedures that are missing, so pages and due times work
    before ingest's first messages arrive; what ingest sends later wins."""
    with (reference_dir / "units.csv").open(encoding="utf-8") as fh:
        units = [
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
    await upsert_units(unit, units, uow=uow, overwrite=False)
    with (reference_dir / "procedures.csv").open(encoding="utf-8") as fh:
        procedures = [
            {
                "procedure_code": r["procedure_code"],
                "name": r["name"],
                "time_limit_wd": int(r["time_limit_wd"]) if r["time_limit_wd"] else None,
                "occurred_at": None,
            }
            for r in csv.DictReader(fh)
        ]
    await upsert_procedures(procedures, uow=uow, overwrite=False)
