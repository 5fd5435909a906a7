"""A dossier's state as warnings need it, folded from its lifecycle events (vòng đời hồ sơ).

Events arrive late, twice and out of order. Each dossier keeps the few events that shape its
state (:func:`remember`) and its state is folded anew from all of them, in time order, whenever
one arrives (:func:`refold`): the same set of events gives the same state whatever order it
came in — a supplement received before the ``received`` it follows still moves the due time —
and a changed working calendar (admin-declared days) refolds every open dossier. New events
that come after everything already folded — a stream in time order, the usual case — are folded
onto the stored state instead (:func:`folds_on`): the same state without reading the history.
In the fold a terminal event always wins (and is never undone), the unit and officer are those
of the latest event that names them, and a due time is the explicit one when given, else
received + the procedure's working days, moved by the working days the clock was paused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

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


class DossierEvent(NamedTuple):
    """Immutable as a frozen dataclass, built ≈ 3× faster: a batch builds several per event."""

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
    """The state after ``events`` (applied in time order on top of ``state``).

    Fields are folded in locals and the state built once at the end: the fold runs for every
    dossier a batch touches (a back-fill: a million events), and ``dataclasses.replace`` per
    field change cost as much as the rest of it."""
    unit_code, unit_at = state.unit_code, state.unit_at
    officer_id, officer_at = state.officer_id, state.officer_at
    procedure_code, received_at = state.procedure_code, state.received_at
    due_at, due_explicit = state.due_at, state.due_explicit
    paused_at, supplement_reason = state.paused_at, state.supplement_reason
    finished_at, finish_kind = state.finished_at, state.finish_kind
    for e in in_order(events):
        t, d, kind = e.occurred_at, e.data, e.type
        if kind == "dossier.received" and received_at is not None:
            continue  # the first receipt is taken whole, a later one changes nothing (as scoring's fold)
        officer = _str(d.get("officer_id"))
        if officer and _later(t, officer_at):
            officer_id, officer_at = officer, t
        if kind == "dossier.received":
            unit = _str(d.get("unit_code"))
            received_at, procedure_code = t, _str(d.get("procedure_code")) or procedure_code
            if unit and (unit_at is None or t > unit_at):
                unit_code, unit_at = unit, t
            explicit = _dt(d.get("due_at"))
            if explicit is not None and not due_explicit:
                due_at, due_explicit = explicit, True
            due_at = _due_or_computed(due_at, received_at, procedure_code, time_limits, calendar)
        elif kind == "dossier.transferred":
            unit = _str(d.get("to_unit_code"))
            if unit and _later(t, unit_at):
                unit_code, unit_at = unit, t
        elif kind == "dossier.supplement_requested":
            # A request while the clock is already paused starts no new pause: the pause runs
            # from the first request to the answer (scoring's clock; a later start would move
            # the due time by fewer working days than scoring does).
            if finished_at is None and paused_at is None:
                paused_at, supplement_reason = t, _str(d.get("reason"))
        elif kind == "dossier.supplement_received":
            explicit = _dt(d.get("due_at"))
            if explicit is not None:
                due_at, due_explicit = explicit, True
            elif paused_at is not None and due_at is not None and t >= paused_at:
                # A request dated before the receipt pauses from the receipt (scoring's clock):
                # the days before it would move the due time past scoring's.
                start = paused_at if received_at is None else max(paused_at, received_at)
                paused_wd = calendar.working_days_between(local_date(start), local_date(max(t, start)))
                due_at = calendar.shift_due(due_at, paused_wd)
            if paused_at is not None and t >= paused_at:
                paused_at = None
        elif kind in TERMINAL and (finished_at is None or t < finished_at):
            finished_at, finish_kind = t, TERMINAL[kind]
    # A procedure unknown when the dossier arrived may be known now.
    due_at = _due_or_computed(due_at, received_at, procedure_code, time_limits, calendar)
    return DossierState(
        state.dossier_id,
        unit_code,
        unit_at,
        officer_id,
        officer_at,
        procedure_code,
        received_at,
        due_at,
        due_explicit,
        paused_at,
        supplement_reason,
        finished_at,
        finish_kind,
    )


def _due_or_computed(
    due_at: datetime | None,
    received_at: datetime | None,
    code: str | None,
    time_limits: Mapping[str, int | None],
    calendar: WorkingCalendar,
) -> datetime | None:
    if due_at is None and received_at is not None and code is not None and code in time_limits:
        return computed_due(received_at, time_limits[code], calendar)
    return due_at


def _order(e: DossierEvent) -> tuple[datetime, str, str]:
    # Total: two events at the same instant (a transfer and its twin) fold in one order always.
    return (e.occurred_at, e.type, _text(e.data))


def _text(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str)


def _instant(e: DossierEvent) -> tuple[datetime, str]:
    return (e.occurred_at, e.type)


def in_order(events: Iterable[DossierEvent]) -> list[DossierEvent]:
    """``sorted(events, key=_order)``, with the data's text computed only when two events share
    an instant and a type (rare): encoding every event's data for the sort key was the fold's
    largest cost."""
    events = list(events)
    out = sorted(events, key=_instant)
    for i in range(1, len(out)):
        if _instant(out[i]) == _instant(out[i - 1]):
            return sorted(events, key=_order)
    return out


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
    and of the others only the latest that names an officer. Kept fields only: no text.

    Two events are the same when their instant, type and kept data are (``_order``); the data's
    text is computed only for events sharing an instant and a type."""
    first: dict[tuple[datetime, str], DossierEvent] = {}
    clashes: dict[tuple[datetime, str], dict[str, DossierEvent]] = {}
    officer: DossierEvent | None = None
    for e in [*history, *new]:
        if e.type not in SHAPING:
            named = e.data.get("officer_id")
            # An empty officer changes nothing in the fold: it must not push out the one that does.
            if _str(named) and (officer is None or e.occurred_at >= officer.occurred_at):
                officer = DossierEvent(e.dossier_id, OFFICER_ONLY, e.occurred_at, {"officer_id": named})
            continue
        data = {k: e.data[k] for k in KEPT_FIELDS if k in e.data}
        key = (e.occurred_at, e.type)
        seen = first.get(key)
        if seen is None:
            first[key] = DossierEvent(e.dossier_id, e.type, e.occurred_at, data)
        elif not (seen.data == data and all(type(v) is str for v in data.values())):  # else: its twin
            same = clashes.setdefault(key, {_text(seen.data): seen})
            same.setdefault(_text(data), DossierEvent(e.dossier_id, e.type, e.occurred_at, data))
    kept = [e for key, e in first.items() if key not in clashes]
    kept += [e for same in clashes.values() for e in same.values()]
    out = in_order(kept)
    return [*out, officer] if officer is not None else out


def shapes(e: DossierEvent) -> bool:
    """Whether ``remember`` keeps something of ``e`` (else the fold ignores it)."""
    return e.type in SHAPING or _str(e.data.get("officer_id")) is not None


def folded_through(history: Iterable[DossierEvent]) -> datetime | None:
    """The latest instant among remembered events (None for none)."""
    return max((e.occurred_at for e in history), default=None)


def folds_on(
    state: DossierState,
    through: datetime | None,
    new: Iterable[DossierEvent],
    *,
    time_limits: Mapping[str, int | None],
) -> bool:
    """Whether folding ``new`` onto the stored ``state`` (remembered events up to ``through``)
    gives what a refold of all the remembered events would.

    Yes when nothing in ``new`` shapes the state (most events of a finished dossier: synced,
    paid, result returned), or when every event that does comes strictly after the remembered
    ones (no twin to compare, nothing to fold before them) and the dossier is open: a calendar or
    time-limit change refolds the open dossiers (``handlers.messages``), so their stored state
    is folded with today's calendar and limits. A finished dossier's due time is not refolded on
    such a change (nothing reads it: warnings list open dossiers); any event that shapes it
    refolds it. No when its due time still waits for a procedure known by now."""
    if state.due_at is None and state.received_at is not None and state.procedure_code in time_limits:
        return False
    shaping = [e.occurred_at for e in new if shapes(e)]
    if not shaping:
        return True
    if through is None or state.finished_at is not None:
        return False
    return min(shaping) > through


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
