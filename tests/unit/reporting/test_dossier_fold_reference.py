"""The fold and ``remember`` as they were before the per-event cost work (kept here as the
reference): on random event sets, including twins at one instant, the faster code gives the
same states and the same remembered events."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.reporting.domain.dossiers import (
    KEPT_FIELDS,
    OFFICER_ONLY,
    SHAPING,
    TERMINAL,
    DossierEvent,
    DossierState,
    _dt,
    _later,
    _str,
    apply,
    computed_due,
    remember,
)
from shared.calendar import VN_TZ, WorkingCalendar, local_date

CAL = WorkingCalendar()
LIMITS: dict[str, int | None] = {"T.DKT.01": 3, "NOW": None, "T.LONG": 15}
T0 = datetime(2026, 10, 5, 9, 0, tzinfo=VN_TZ)


def _order(e: DossierEvent) -> tuple[datetime, str, str]:
    return (e.occurred_at, e.type, json.dumps(e.data, sort_keys=True, default=str))


def _with_computed_due(s: DossierState) -> DossierState:
    code = s.procedure_code
    if s.due_at is None and s.received_at is not None and code is not None and code in LIMITS:
        return replace(s, due_at=computed_due(s.received_at, LIMITS[code], CAL))
    return s


def reference_apply(state: DossierState, events: Iterable[DossierEvent]) -> DossierState:
    s = state
    for e in sorted(events, key=_order):
        t, d = e.occurred_at, e.data
        if e.type == "dossier.received" and s.received_at is not None:
            continue  # the first receipt only (scoring's fold)
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
            s = _with_computed_due(s)
        elif e.type == "dossier.transferred":
            unit = _str(d.get("to_unit_code"))
            if unit and _later(t, s.unit_at):
                s = replace(s, unit_code=unit, unit_at=t)
        elif e.type == "dossier.supplement_requested":
            if s.finished_at is None and s.paused_at is None:  # no new pause while paused
                s = replace(s, paused_at=t, supplement_reason=_str(d.get("reason")))
        elif e.type == "dossier.supplement_received":
            explicit = _dt(d.get("due_at"))
            if explicit is not None:
                s = replace(s, due_at=explicit, due_explicit=True)
            elif s.paused_at is not None and s.due_at is not None and t >= s.paused_at:
                # Paused from the receipt when requested before it (scoring's clock).
                start = s.paused_at if s.received_at is None else max(s.paused_at, s.received_at)
                paused_wd = CAL.working_days_between(local_date(start), local_date(max(t, start)))
                s = replace(s, due_at=CAL.shift_due(s.due_at, paused_wd))
            if s.paused_at is not None and t >= s.paused_at:
                s = replace(s, paused_at=None)
        elif e.type in TERMINAL and (s.finished_at is None or t < s.finished_at):
            s = replace(s, finished_at=t, finish_kind=TERMINAL[e.type])
    return _with_computed_due(s)


def reference_remember(history: Iterable[DossierEvent], new: Iterable[DossierEvent]) -> list[DossierEvent]:
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


TYPES = [
    "dossier.received",
    "dossier.transferred",
    "dossier.supplement_requested",
    "dossier.supplement_received",
    "dossier.completed",
    "dossier.withdrawn",
    "dossier.assigned",
    "dossier.synced",
]


def random_event(rng: random.Random) -> DossierEvent:
    # Few distinct instants and values, so twins (same instant and type) are common.
    at = T0 + timedelta(hours=rng.choice([0, 0, 5, 26, 26, 49, 73, 200]))
    if rng.random() < 0.2:
        at = at.astimezone(UTC)  # the same instant, written in UTC
    data: dict[str, Any] = {"dossier_id": "HS-1"}
    for key, values in (
        ("unit_code", ["P01", "P02", 7]),
        ("to_unit_code", ["P01.L01", "P02.L02", ""]),
        ("officer_id", ["a", "b", None]),
        ("procedure_code", ["T.DKT.01", "NOW", "T.LONG", "X"]),
        ("due_at", [(T0 + timedelta(days=6)).isoformat(), "not a time", 1]),
        ("reason", ["thiếu tờ khai", 1.0, True]),
        ("note", ["văn bản", {"x": 1}]),
    ):
        if rng.random() < 0.4:
            data[key] = rng.choice(values)
    return DossierEvent("HS-1", rng.choice(TYPES), at, data)


def test_the_fold_and_the_remembered_events_match_the_reference() -> None:
    rng = random.Random(20261129)
    for _ in range(3_000):
        events = [random_event(rng) for _ in range(rng.randint(1, 9))]
        split = rng.randint(0, len(events))
        history = reference_remember([], events[:split])
        assert remember([], events[:split]) == history
        kept = remember(history, events[split:])
        assert kept == reference_remember(history, events[split:])
        empty = DossierState("HS-1")
        assert apply(empty, kept, time_limits=LIMITS, calendar=CAL) == reference_apply(empty, kept)
        # A legacy row folds the raw events on top of a stored state.
        base = reference_apply(empty, events[:split])
        assert apply(base, events[split:], time_limits=LIMITS, calendar=CAL) == reference_apply(base, events[split:])
