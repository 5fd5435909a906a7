"""The due time a warning shows is the one scoring judges with (``services.scoring.domain.dossier``
is the oracle): same working-day calendar, same clock rules for supplement requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from services.reporting.domain.dossiers import DossierEvent, refold
from services.scoring.domain.dossier import clock_as_of, fold_dossier
from services.scoring.domain.events import DomainEvent, Procedure
from shared.calendar import VN_TZ, WorkingCalendar

CAL = WorkingCalendar()
LIMITS: dict[str, int | None] = {"T.DKT.01": 3, "T.LONG": 15}
PROCEDURES = {code: Procedure(code, time_limit_wd=limit) for code, limit in LIMITS.items()}
D = "HS-FIG-1"


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 10, day, hour, 0, tzinfo=VN_TZ)


def both(events: list[tuple[str, datetime, dict[str, Any]]]) -> tuple[datetime | None, datetime | None]:
    """(reporting's due time, scoring's due time) for the same events."""
    mine = refold(
        D,
        [DossierEvent(D, t, when, {"dossier_id": D, **data}) for t, when, data in events],
        time_limits=LIMITS,
        calendar=CAL,
    )
    facts = fold_dossier(
        D,
        [DomainEvent("src", f"e{i}", t, when, {"dossier_id": D, **data}) for i, (t, when, data) in enumerate(events)],
        PROCEDURES,
    )
    assert facts is not None
    return mine.due_at, clock_as_of(facts, None, CAL).due_at


RECEIVED = ("dossier.received", at(5, 9), {"unit_code": "P01", "procedure_code": "T.LONG"})


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([RECEIVED], id="received"),
        pytest.param(
            [RECEIVED, ("dossier.supplement_requested", at(6), {}), ("dossier.supplement_received", at(9), {})],
            id="one pause",
        ),
        # A second request while the clock is already paused does not start a new pause: the
        # pause runs from the first request to the answer (scoring: "A request while already
        # paused does not start a new pause").
        pytest.param(
            [
                RECEIVED,
                ("dossier.supplement_requested", at(6), {}),
                ("dossier.supplement_requested", at(8), {}),
                ("dossier.supplement_received", at(13), {}),
            ],
            id="second request while paused",
        ),
        # A request dated before the receipt (a back-fill, a dossier system's clock): scoring
        # counts it from the receipt; the days before the receipt move nothing.
        pytest.param(
            [("dossier.supplement_requested", at(1), {}), RECEIVED, ("dossier.supplement_received", at(9), {})],
            id="request before the receipt",
        ),
        # A second receipt (another key, a later instant, another procedure): scoring takes the
        # first receipt whole and the second changes nothing.
        pytest.param(
            [RECEIVED, ("dossier.received", at(12), {"unit_code": "P02", "procedure_code": "T.DKT.01"})],
            id="second receipt",
        ),
        pytest.param(
            [("dossier.received", at(12), {"unit_code": "P02", "procedure_code": "T.DKT.01"}), RECEIVED],
            id="second receipt sent first",
        ),
    ],
)
def test_reporting_due_time_is_scorings(events: list[tuple[str, datetime, dict[str, Any]]]) -> None:
    mine, scoring = both(events)
    assert mine == scoring


def test_a_second_receipt_changes_nothing() -> None:
    """Received time, procedure, unit and officer are the first receipt's, as scoring's."""
    later = ("dossier.received", at(12), {"unit_code": "P02", "procedure_code": "T.DKT.01", "officer_id": "X"})
    for events in ([RECEIVED, later], [later, RECEIVED]):
        state = refold(
            D,
            [DossierEvent(D, t, when, {"dossier_id": D, **data}) for t, when, data in events],
            time_limits=LIMITS,
            calendar=CAL,
        )
        assert (state.received_at, state.procedure_code, state.unit_code, state.officer_id) == (
            at(5, 9),
            "T.LONG",
            "P01",
            None,
        )
