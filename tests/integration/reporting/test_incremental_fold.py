"""Through the real handler and PostgreSQL: dossiers fed in random arrival orders and batches end
with the state and the history a refold of everything they remembered gives (most batches fold
onto the stored state and append to the history in SQL, the others refold); a procedure whose
time limit changes refolds its open dossiers."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.reporting.bootstrap import Reporting
from services.reporting.domain.dossiers import DossierEvent, DossierState, folded_through, refold, remember, to_json
from services.reporting.handlers.dossier_events import STATE_COLUMNS, _calendar
from services.reporting.handlers.messages import on_dossier_events, on_procedure_events
from shared.db import driver_connection
from tests.integration.reporting.conftest import message
from tests.integration.reporting.test_calendar_days import MONDAY, THURSDAY_END
from tests.integration.reporting.test_read_model import apply
from tests.unit.reporting.test_dossier_fold_reference import random_event

pytestmark = pytest.mark.integration


def envelope(e: DossierEvent) -> dict[str, Any]:
    return {
        "source": "tms-fold",
        "event_id": uuid.uuid4().hex,
        "type": e.type,
        "occurred_at": e.occurred_at.isoformat(),
        "data": {**e.data, "dossier_id": e.dossier_id},
    }


async def stored(reporting: Reporting, ids: list[str]) -> dict[str, dict[str, Any]]:
    async with reporting.sessions() as s:
        conn = await driver_connection(s)
        rows = await conn.fetch(
            f"SELECT dossier_id, {', '.join(STATE_COLUMNS)}, folded_through, history::text"
            " FROM reporting.dossier WHERE dossier_id = ANY($1::text[])",
            ids,
        )
        await s.rollback()
    return {r["dossier_id"]: dict(r) for r in rows}


async def test_random_arrival_orders_end_as_the_refold(reporting: Reporting) -> None:
    rng = random.Random(1130)
    run = uuid.uuid4().hex[:6]
    chunks: dict[str, list[list[DossierEvent]]] = {}
    for k in range(150):
        d = f"HS-INC-{run}-{k}"
        events = [e._replace(dossier_id=d) for e in (random_event(rng) for _ in range(rng.randint(1, 8)))]
        if rng.random() < 0.6:
            events.sort(key=lambda e: e.occurred_at)
        else:
            rng.shuffle(events)
        parts = rng.randint(1, min(3, len(events)))
        cuts = [*sorted(rng.sample(range(1, len(events)), k=parts - 1)), len(events)]
        chunks[d] = [events[a:b] for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]
    expected: dict[str, list[DossierEvent]] = {d: [] for d in chunks}
    for n in range(3):  # batch n carries every dossier's n-th chunk, as ingest would
        batch = [e for pieces in chunks.values() if n < len(pieces) for e in pieces[n]]
        for d, pieces in chunks.items():
            if n < len(pieces):
                expected[d] = remember(expected[d], pieces[n])
        body = {"events": [envelope(e) for e in batch], "accepted_at": datetime.now(UTC).isoformat()}
        await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", body))
    rows = await stored(reporting, list(chunks))
    async with reporting.sessions() as s:
        conn = await driver_connection(s)
        cal = await _calendar(conn)
        codes = ["T.DKT.01", "NOW", "T.LONG", "X"]
        limits = {
            r[0]: r[1]
            for r in await conn.fetch(
                "SELECT procedure_code, time_limit_wd FROM reporting.procedure WHERE procedure_code = ANY($1::text[])",
                codes,
            )
        }
        await s.rollback()
    # A dossier with nothing remembered (only events the fold ignores) has no row: it would hold nothing.
    assert set(rows) == {d for d, history in expected.items() if history}
    for d, history in expected.items():
        if not history:
            continue
        r = rows[d]
        want = refold(d, history, time_limits=limits, calendar=cal)
        assert DossierState(d, *(r[c] for c in STATE_COLUMNS)) == want, d
        assert orjson.loads(r["history"]) == to_json(history), d
        assert r["folded_through"] == folded_through(history), d


async def test_a_changed_time_limit_moves_the_due_time_of_open_dossiers(reporting: Reporting) -> None:
    code = f"T.TEST.{uuid.uuid4().hex[:6]}"
    d = f"HS-LIM-{uuid.uuid4().hex[:8]}"

    def procedure(limit: int, at: datetime) -> Any:
        event = {
            "source": "catalogue",
            "event_id": uuid.uuid4().hex,
            "type": "procedure.upserted",
            "occurred_at": at.isoformat(),
            "data": {"procedure_code": code, "name": "thử", "time_limit_wd": limit},
        }
        return message("ingest.procedure-events.v1", {"events": [event]})

    await apply(reporting, on_procedure_events, procedure(3, MONDAY - timedelta(days=30)))
    received = {
        "source": "tms-fold",
        "event_id": uuid.uuid4().hex,
        "type": "dossier.received",
        "occurred_at": MONDAY.isoformat(),
        "data": {"dossier_id": d, "unit_code": "P14", "procedure_code": code},
    }
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", {"events": [received]}))
    assert (await stored(reporting, [d]))[d]["due_at"] == THURSDAY_END
    await apply(reporting, on_procedure_events, procedure(4, MONDAY - timedelta(days=1)))
    assert (await stored(reporting, [d]))[d]["due_at"] == THURSDAY_END + timedelta(days=1)
    # A later event folds onto the refolded state: the new limit stays.
    moved = {
        "source": "tms-fold",
        "event_id": uuid.uuid4().hex,
        "type": "dossier.transferred",
        "occurred_at": (MONDAY + timedelta(hours=1)).isoformat(),
        "data": {"dossier_id": d, "to_unit_code": "P14.L01"},
    }
    await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", {"events": [moved]}))
    row = (await stored(reporting, [d]))[d]
    assert row["unit_code"] == "P14.L01" and row["due_at"] == THURSDAY_END + timedelta(days=1)


async def test_a_row_stored_before_folded_through_is_refolded_once_then_folded_on(reporting: Reporting) -> None:
    d = f"HS-PRE-{uuid.uuid4().hex[:8]}"
    received = DossierEvent(d, "dossier.received", MONDAY, {"unit_code": "P14", "procedure_code": "T.DKT.01"})
    async with reporting.uow() as uow:
        conn = await driver_connection(uow.session)
        await conn.execute(
            "INSERT INTO reporting.dossier"
            " (dossier_id, unit_code, unit_at, procedure_code, received_at, due_at, history)"
            " VALUES ($1, 'P14', $2, 'T.DKT.01', $2, $3, $4::jsonb)",
            d,
            MONDAY,
            THURSDAY_END,
            orjson.dumps(to_json([received])).decode(),
        )
    later = [
        DossierEvent(d, "dossier.transferred", MONDAY + timedelta(hours=1), {"to_unit_code": "P14.L01"}),
        DossierEvent(d, "dossier.completed", MONDAY + timedelta(hours=2), {}),
    ]
    for e in later:  # the first refolds from the history and sets folded_through; the second folds on
        body = {"events": [envelope(e)], "accepted_at": datetime.now(UTC).isoformat()}
        await apply(reporting, on_dossier_events, message("ingest.dossier-events.v1", body))
    row = (await stored(reporting, [d]))[d]
    assert (row["unit_code"], row["finish_kind"], row["due_at"]) == ("P14.L01", "completed", THURSDAY_END)
    assert row["folded_through"] == MONDAY + timedelta(hours=2)
    assert [e["type"] for e in orjson.loads(row["history"])] == [
        "dossier.received",
        "dossier.transferred",
        "dossier.completed",
    ]
