"""The scoring process's state that the use cases share (engine, sessions, caches).

Built by :func:`services.scoring.bootstrap.bootstrap`; the use cases (the refresher, the caches'
synchronisation, the read queries) and the API take it as an argument. It lives here, below
the composition root, so that no use case imports ``bootstrap`` (the root imports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.scoring.adapters.judging_steps import JudgingStep
from services.scoring.adapters.repository import load_procedures, load_units
from services.scoring.adapters.tables import outbox
from services.scoring.application.table_copy import Reloads, TableCopy
from services.scoring.domain import Methodology, Procedure, load_builtin
from services.scoring.domain.calendar_cache import CachedCalendar
from services.scoring.domain.engine import UnitRow
from services.scoring.settings import ScoringSettings
from shared.calendar import WorkingCalendar
from shared.unit_of_work import ServiceDatabase

EXCHANGE = "scoring.events"
METHODOLOGY_IDS = ("tax-2025", "portal-766")


def builtin_methodologies() -> dict[str, Methodology]:
    return {m: load_builtin(m) for m in METHODOLOGY_IDS}


@dataclass
class Scoring(ServiceDatabase):
    OUTBOX = outbox
    EXCHANGE = EXCHANGE

    settings: ScoringSettings
    calendar: WorkingCalendar = field(default_factory=CachedCalendar)
    methodologies: dict[str, Methodology] = field(default_factory=builtin_methodologies)
    # The declared days ``calendar`` was built from (None: not loaded from the table yet).
    calendar_days: frozenset[tuple[date, str]] | None = None
    # When the API checks methodologies and calendar against their tables (api.routes.get_app).
    synced: Reloads = field(default_factory=lambda: Reloads("methodologies and calendar"))
    # The API's copies of the unit tree and the procedure catalogue (queries.unit_tree, queries.catalogue).
    units: TableCopy[list[UnitRow]] = field(default_factory=lambda: TableCopy(load_units))
    procedures: TableCopy[dict[str, Procedure]] = field(default_factory=lambda: TableCopy(load_procedures))
    # This worker's last judging step (None: none yet), reconciled at its next step; its row
    # outlives the process (refresher.open_judging_step).
    judging_step: JudgingStep | None = None
    # Batch acceptance times whose freshness was observed already (insertion-ordered, bounded).
    freshness_seen: dict[datetime, None] = field(default_factory=dict)
