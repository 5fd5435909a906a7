"""Builders for scoring-domain tests."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from services.scoring.domain import DomainEvent, Procedure
from shared.calendar import VN_TZ, WorkingCalendar

CAL = WorkingCalendar()
_ids = itertools.count()

PROCS: dict[str, Procedure] = {
    "P3": Procedure(
        "P3",
        levels=frozenset({"province", "local"}),
        time_limit_wd=3,
        online_level_offered="full",
        returns_document=True,
        target="citizen",
    ),
    "P5": Procedure(
        "P5",
        levels=frozenset({"local"}),
        time_limit_wd=5,
        online_level_offered="partial",
        has_fee=True,
        returns_document=False,
        target="business",
    ),
    "P0": Procedure(
        "P0",
        levels=frozenset({"local"}),
        time_limit_wd=None,
        online_level_offered="full",
        has_fee=True,
        returns_document=False,
        target="both",
    ),
    "PX": Procedure("PX", levels=frozenset({"province"}), time_limit_wd=10, online_level_offered="none"),
}


def t(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN_TZ)


def ev(
    type_: str, at: datetime, dossier_id: str = "D1", source: str = "tms", event_id: str | None = None, **data: Any
) -> DomainEvent:
    return DomainEvent(source, event_id or f"e{next(_ids)}", f"dossier.{type_}", at, {"dossier_id": dossier_id, **data})


def received(
    at: datetime, dossier_id: str = "D1", procedure_code: str = "P3", unit_code: str = "U1", **data: Any
) -> DomainEvent:
    base: dict[str, Any] = {
        "procedure_code": procedure_code,
        "unit_code": unit_code,
        "due_at": None,
        "channel": "online",
        "online_level": "full",
        "applicant_type": "citizen",
        "officer_id": "O1",
        "population_data_used": True,
        "personal_store_used": True,
    }
    base.update(data)
    return ev("received", at, dossier_id, **base)


def completed(at: datetime, dossier_id: str = "D1", **data: Any) -> DomainEvent:
    base: dict[str, Any] = {"outcome": "approved", "result_digitized": True, "officer_id": "O2"}
    base.update(data)
    return ev("completed", at, dossier_id, **base)
