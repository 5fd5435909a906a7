"""``scores-updated`` messages in hand, one statement: the newest computation of a key wins in any
order, and what scoring's canonical body stores is what the contract's models store."""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.reporting.adapters.tables import inbox
from services.reporting.bootstrap import Reporting
from services.reporting.handlers.scores import _STORE_SCORES, canonical_rows, model_rows, on_score_batches
from services.reporting.subscriptions import SUBSCRIPTIONS
from shared.contracts.scoring import ScoresUpdated
from shared.db import driver_connection
from shared.messaging.consumer import Consumer, Delivery
from tests.integration.reporting.conftest import message

pytestmark = pytest.mark.integration
SCORES = next(s for s in SUBSCRIPTIONS if ScoresUpdated.routing_key in s.routing_keys)

KEY = "scoring.scores-updated.v3"
STORED = (
    "methodology, period_kind, total::text, grade, rank, rank_delta, dossiers, provisional,"
    " groups::text, indicators::text, unit_name, level, parent_code, computed_at"
)


def figures(total: str) -> dict[str, Any]:
    """As scoring announces them: decimals as their text."""
    return {
        "total": total,
        "grade": "good",
        "rank": 2,
        "rank_delta": 1,
        "dossiers": 40,
        "provisional": False,
        "groups": {"G1": "15.0", "G2": "17.50"},
        "indicators": [
            {"id": "2.1", "numerator": 30, "denominator": 40, "ratio": "75.0", "points": "15.0", "max_points": "20.0"}
            | {"applicable": True},
            {"id": "4.3", "numerator": 2.6666666666666665, "denominator": 4, "ratio": "66.67", "points": "5.92"}
            | {"max_points": "6.0", "applicable": True},
            {"id": "1.1", "numerator": None, "denominator": None, "ratio": None, "points": "0.0", "max_points": "6"}
            | {"applicable": False},
        ],
        "unit_name": "Thuế tỉnh 7",
        "level": "province",
        "parent_code": "CT",
    }


def body(period: str, at: datetime, total: str, *codes: str) -> dict[str, Any]:
    units = [{"unit_code": c, "scores": {"tax-2025": figures(total), "portal-766": figures(total)}} for c in codes]
    return {"period": period, "computed_at": at.isoformat(), "units": units}


async def stored(reporting: Reporting, period: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    async with reporting.sessions() as s:
        conn = await driver_connection(s)
        rows = await conn.fetch(f"SELECT unit_code, {STORED} FROM reporting.score WHERE period = $1", period)
        await s.rollback()
    return {(r["unit_code"], r["methodology"]): tuple(r)[1:] for r in rows}


async def test_the_newest_of_a_key_wins_whatever_the_order_in_the_batch(reporting: Reporting) -> None:
    at = datetime(2023, 5, 2, 3, tzinfo=UTC)
    older, newer = (
        body("2023-05", at, "60.00", "P07", "P08"),
        body("2023-05", at + timedelta(seconds=1), "70.50", "P07"),
    )
    also = body("2023-Q2", at, "65.00", "P07")  # another period of the same unit: its own row
    async with reporting.uow() as uow:
        await on_score_batches([message(KEY, b) for b in (newer, also, older)], uow)
    rows = await stored(reporting, "2023-05")
    assert {k: (r[2], r[-1]) for k, r in rows.items()} == {
        ("P07", "tax-2025"): ("70.50", at + timedelta(seconds=1)),
        ("P07", "portal-766"): ("70.50", at + timedelta(seconds=1)),
        ("P08", "tax-2025"): ("60.00", at),
        ("P08", "portal-766"): ("60.00", at),
    }
    assert (await stored(reporting, "2023-Q2"))[("P07", "tax-2025")][2] == "65.00"
    # Newer first, then older, in one batch; and an equal computation delivered again: the later one.
    newest = body("2023-05", at + timedelta(seconds=2), "71.00", "P08")
    async with reporting.uow() as uow:
        await on_score_batches([message(KEY, b) for b in (newest, older, newest)], uow)
    rows = await stored(reporting, "2023-05")
    assert rows[("P08", "tax-2025")][2] == "71.00" and rows[("P07", "tax-2025")][2] == "70.50"


async def test_a_canonical_body_stores_what_the_models_store(reporting: Reporting) -> None:
    at = datetime(2023, 6, 2, 3, tzinfo=UTC)
    b = orjson.dumps(body("2023-06", at, "81.20", "P09"))
    assert canonical_rows(b) is not None  # the fast reading, not the models
    async with reporting.uow() as uow:
        await on_score_batches([message(KEY, orjson.loads(b))], uow)
    fast = await stored(reporting, "2023-06")
    # The same body through the models, into the same rows of another month (the statement's own arrays).
    update = ScoresUpdated.model_validate_json(b)
    rows = model_rows(update)
    async with reporting.uow() as uow:
        conn = await driver_connection(uow.session)
        columns = list(zip(*((r[0], r[1], "2023-07", "month", *r[2:], update.computed_at) for r in rows), strict=True))
        await conn.execute(_STORE_SCORES, *columns)
    assert fast and fast == await stored(reporting, "2023-07")


async def test_through_the_consumer_a_malformed_message_fails_alone(reporting: Reporting) -> None:
    at = datetime(2023, 8, 2, 3, tzinfo=UTC)
    bad = body("2023-08", at, "lots", "P10")
    good = [body("2023-08", at, "50.00", "P11"), body("2023-08", at, "51.00", "P12")]
    deliveries = [Delivery(message(KEY, b), contextvars.copy_context()) for b in (good[0], bad, good[1])]
    await Consumer(uow_factory=reporting.uow, inbox=inbox).apply_batch(SCORES, deliveries)
    assert await deliveries[0].outcome and await deliveries[2].outcome
    with pytest.raises(ValueError):  # the models' ValidationError: rejected, retried, then parked
        await deliveries[1].outcome
    assert {k[0]: r[2] for k, r in (await stored(reporting, "2023-08")).items()} == {"P11": "50.00", "P12": "51.00"}
