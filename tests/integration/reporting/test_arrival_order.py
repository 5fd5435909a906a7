"""Through the handler, one batch per event: a supplement received before its ``received``
still gives the right due time, whatever order the batches come in."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from itertools import permutations

import pytest

from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_dossier_events
from tests.integration.reporting.conftest import message
from tests.integration.reporting.test_calendar_days import MONDAY, due
from tests.integration.reporting.test_read_model import apply, dossier_batch

pytestmark = pytest.mark.integration
# Received Monday, paused Tuesday 10:00 → Thursday 10:00 (Wednesday, Thursday): end of Thursday
# (3 working days) moves by 2 working days to the end of the next Monday.
EXPECTED = datetime(2026, 10, 13, 0, 0, tzinfo=MONDAY.tzinfo)


@pytest.mark.parametrize("order", list(permutations(range(3))), ids=lambda o: "-".join(map(str, o)))
async def test_every_arrival_order_gives_the_paused_due_time(reporting: Reporting, order: tuple[int, ...]) -> None:
    d = f"HS-ORD-{uuid.uuid4().hex[:8]}"
    events = [
        {
            "type": "dossier.received",
            "at": MONDAY.isoformat(),
            "data": {"dossier_id": d, "unit_code": "P17", "procedure_code": "T.DKT.01", "officer_id": "cb-2"},
        },
        {
            "type": "dossier.supplement_requested",
            "at": (MONDAY + timedelta(hours=25)).isoformat(),
            "data": {"dossier_id": d, "reason": "thiếu tờ khai"},
        },
        {
            "type": "dossier.supplement_received",
            "at": (MONDAY + timedelta(hours=73)).isoformat(),
            "data": {"dossier_id": d},
        },
    ]
    for i in order:
        await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", dossier_batch([events[i]])))
    assert await due(reporting, d) == EXPECTED
