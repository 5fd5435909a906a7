"""A dossier's state as warnings need it, folded from its lifecycle events (vòng đời hồ sơ).

Events arrive late, twice and out of order. Each dossier keeps the few events that shape its
state (:func:`remember`) and its state is folded anew from all of them, in time order, whenever
one arrives (:func:`refold`): the same set of events gives the same state whatever order it
came in — a supplement received before the ``received`` it follows still moves the due time —
and a changed working calendar (admin-declared days) refolds every open dossier. In the fold a
terminal event always wins (and is never undone), the unit and officer are those of the latest
event that names them, and a due time is the explicit one when given, else received + the
procedure's working days, moved by the working days the clock was paused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.calendar import WorkingCalendar, end_of_day, local_date

TERMINAL = {"dossier.completed": "completed", "dossier.withdrawn": "withdrawn"}


@dataclass(frozen=True)
class DossierState:
    dossier_id: str
    unit_code: str | None = None
    unit_at: datetime | None = None
    officer_id: str | None = None
    officer_at: datetime | None = None
    procedure_code: str | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None
    due_explicit: bool = False
    paused_at: datetime | None = None
    supplement_reason: str | None = None
    finished_at: datetime | None = None
    finish_kind: str | None = None


@dataclass(frozen=True)
class DossierEvent:
    dossier_id: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any]


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def computed_due(received_at: datetime, time_limit_wd: int | None, calendar: WorkingCalendar) -> datetime:
    """Received + the legal working days; a procedure answered on receipt is due that day."""
    if time_limit_wd is None:
        return end_of_day(local_date(received_at))
    return calendar.due_after(received_at, time_limit_wd)


def _later(at: datetime, than: datetime | None) -> bool:
    return than is None or at >= than


def apply(
    state: DossierState,
    events: Iterable[DossierEvent],
    *,
    time_limits: Mapping[str, int | None],
    calendar: WorkingCalendar,
) -> DossierState:
    """The state after ``events`` (applied in time order on top of ``state``)."""
    s = state
    for e in sorted(events, key=_order):
        t, d = e.occurred_at, e.data
        officer = _str(d.get("officer_id"))
        if officer and _later(t, s.officer_at):
            s = replace(s, officer_id=officer, officer_at=t)
        if e.type == "dossier.received":
            unit = _str(d.get("unit_code"))
            s = replace(s, received_at=t, procedure_code=_str(d.get("procedure_code")) or s.procedure_code)
            if unit and (s.unit_at is None or t > s.unit_at):
                s = replace(s, unit_code=unit, unit_at=t)
            explicit = _dt(d.get("due_at"))
            if explicit is not None and not s.due_explicit:
                s = replace(s, due_at=explicit, due_explicit=True)
            s = _with_computed_due(s, time_limits, calendar)
        elif e.type == "dossier.transferred":
            unit = _str(d.get("to_unit_code"))
            if unit and _later(t, s.unit_at):
                s = replace(s, unit_code=unit, unit_at=t)
        elif e.type == "dossier.supplement_requested":
            if s.finished_at is None and _later(t, s.paused_at):
                s = replace(s, paused_at=t, supplement_reason=_str(d.get("reason")))
        elif e.type == "dossier.supplement_received":
            explicit = _dt(d.get("due_at"))
            if explicit is not None:
                s = replace(s, due_at=explicit, due_explicit=True)
            elif s.paused_at is not None and s.due_at is not None and t >= s.paused_at:
                paused_wd = calendar.working_days_between(local_date(s.paused_at), local_date(t))
                s = replace(s, due_at=calendar.shift_due(s.due_at, paused_wd))
            if s.paused_at is not None and t >= s.paused_at:
                s = replace(s, paused_at=None)
        elif e.type in TERMINAL and (s.finished_at is None or t < s.finished_at):
            s = replace(s, finished_at=t, finish_kind=TERMINAL[e.type])
    # A procedure unknown when the dossier arrived may be known now.
    return _with_computed_due(s, time_limits, calendar)


def _with_computed_due(
    s: DossierState, time_limits: Mapping[str, int | None], calendar: WorkingCalendar
) -> DossierState:
    code = s.procedure_code
    if s.due_at is None and s.received_at is not None and code is not None and code in time_limits:
        return replace(s, due_at=computed_due(s.received_at, time_limits[code], calendar))
    return s


def parse_event(raw_type: str, occurred_at: str, data: Mapping[str, Any]) -> DossierEvent | None:
    """A dossier event from the raw envelope, or None when it names no dossier or time."""
    dossier_id = _str(data.get("dossier_id"))
    at = _dt(occurred_at)
    if dossier_id is None or at is None or not raw_type.startswith("dossier."):
        return None
    return DossierEvent(dossier_id=dossier_id, type=raw_type, occurred_at=at, data=data)


def _order(e: DossierEvent) -> tuple[datetime, str, str]:
    # Total: two events at the same instant (a transfer and its twin) fold in one order always.
    return (e.occurred_at, e.type, json.dumps(e.data, sort_keys=True, default=str))


# --- the remembered events ------------------------------------------------------------------

SHAPING = frozenset(
    {
        "dossier.received",
        "dossier.transferred",
        "dossier.supplement_requested",
        "dossier.supplement_received",
        *TERMINAL,
    }
)
KEPT_FIELDS = ("unit_code", "to_unit_code", "officer_id", "procedure_code", "due_at", "reason")
OFFICER_ONLY = "officer"  # any other event naming an officer: only the latest one is kept


def remember(history: Iterable[DossierEvent], new: Iterable[DossierEvent]) -> list[DossierEvent]:
    """The events worth keeping for a dossier: every shaping event once (duplicates dropped),
    and of the others only the latest that names an officer. Kept fields only: no text."""
    kept: dict[tuple[datetime, str, str], DossierEvent] = {}
    officer: DossierEvent | None = None
    for e in [*history, *new]:
        data = {k: e.data[k] for k in KEPT_FIELDS if k in e.data}
        if e.type in SHAPING:
            slim = DossierEvent(e.dossier_id, e.type, e.occurred_at, data)
            kept.setdefault(_order(slim), slim)
        elif isinstance(data.get("officer_id"), str) and (officer is None or e.occurred_at >= officer.occurred_at):
            officer = DossierEvent(e.dossier_id, OFFICER_ONLY, e.occurred_at, {"officer_id": data["officer_id"]})
    out = sorted(kept.values(), key=_order)
    return [*out, officer] if officer is not None else out


def refold(
    dossier_id: str,
    history: Iterable[DossierEvent],
    *,
    time_limits: Mapping[str, int | None],
    calendar: WorkingCalendar,
) -> DossierState:
    """The state from the remembered events alone (any arrival order gives the same state)."""
    return apply(DossierState(dossier_id=dossier_id), history, time_limits=time_limits, calendar=calendar)


def to_json(history: Iterable[DossierEvent]) -> list[dict[str, Any]]:
    return [{"type": e.type, "at": e.occurred_at.isoformat(), "data": dict(e.data)} for e in history]


def from_json(dossier_id: str, rows: Iterable[Mapping[str, Any]]) -> list[DossierEvent]:
    return [
        DossierEvent(dossier_id, str(r["type"]), datetime.fromisoformat(r["at"]), r.get("data") or {}) for r in rows
    ]
