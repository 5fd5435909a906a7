"""What ``scores-updated`` and the alerts store, row by row: values, the late-older guard, versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.reporting.bootstrap import Reporting
from services.reporting.handlers.messages import on_score_alert, on_scores_updated
from shared.db import driver_connection
from tests.integration.reporting.conftest import message

pytestmark = pytest.mark.integration

PERIOD = "2024-Q2"  # no other test of the module's database writes it
UNIT = "P05"


def body(at: datetime, total: float, *, provisional: bool = False, period: str = PERIOD) -> dict[str, Any]:
    figures = {
        "total": total,
        "grade": "good",
        "rank": 3,
        "rank_delta": -1,
        "dossiers": 120,
        "provisional": provisional,
        "groups": {"G1": 15, "G2": 17.5, "G3": 0.1},
        "indicators": [
            {"id": "2.1", "numerator": 100, "denominator": 120, "ratio": 83.33, "points": 16.67, "max_points": 20},
            {
                "id": "2.2",
                "numerator": 1097.4535196131112,
                "denominator": 120,
                "ratio": None,
                "points": 0,
                "max_points": 0,
                "applicable": False,
            },
        ],
        "unit_name": "Thuế tỉnh 5",
        "level": "province",
        "parent_code": "CT",
    }
    return {
        "period": period,
        "computed_at": at.isoformat(),
        "units": [
            {
                "unit_code": UNIT,
                "scores": {"tax-2025": figures, "portal-766": figures | {"total": total - 10, "rank": 7}},
            }
        ],
    }


async def rows(reporting: Reporting, period: str = PERIOD) -> dict[str, dict[str, Any]]:
    async with reporting.sessions() as s:
        conn = await driver_connection(s)
        found = await conn.fetch(
            "SELECT methodology, period_kind, total, grade, rank, rank_delta, dossiers, provisional,"
            " groups::text, indicators::text, unit_name, level, parent_code, computed_at"
            " FROM reporting.score WHERE period = $1 AND unit_code = $2",
            period,
            UNIT,
        )
        await s.rollback()
    return {r["methodology"]: dict(r) for r in found}


async def version(reporting: Reporting, scope: str) -> int:
    async with reporting.sessions() as s:
        conn = await driver_connection(s)
        v = await conn.fetchval("SELECT version FROM reporting.read_model_version WHERE scope = $1", scope)
        await s.rollback()
    return int(v or 0)


async def apply(reporting: Reporting, handler: Any, routing_key: str, payload: dict[str, Any]) -> None:
    async with reporting.uow() as uow:
        await handler(message(routing_key, payload), uow)


async def test_every_methodology_is_stored_with_the_contract_figures(reporting: Reporting) -> None:
    at = datetime(2024, 7, 1, 3, tzinfo=UTC)
    await apply(reporting, on_scores_updated, "scoring.scores-updated.v3", body(at, 81.25))
    stored = await rows(reporting)
    assert set(stored) == {"tax-2025", "portal-766"}
    tax = stored["tax-2025"]
    assert (tax["period_kind"], tax["total"], tax["grade"], tax["rank"], tax["rank_delta"]) == (
        "quarter",
        Decimal("81.25"),
        "good",
        3,
        -1,
    )
    assert (tax["dossiers"], tax["provisional"], tax["unit_name"], tax["level"], tax["parent_code"]) == (
        120,
        False,
        "Thuế tỉnh 5",
        "province",
        "CT",
    )
    assert tax["computed_at"] == at
    # Decimals as the contract's text (what the pages print), numerators as numbers.
    assert tax["groups"] == '{"G1": "15", "G2": "17.5", "G3": "0.1"}'
    assert '"ratio": "83.33"' in tax["indicators"] and '"points": "16.67"' in tax["indicators"]
    assert '"numerator": 1097.4535196131112' in tax["indicators"] and '"applicable": false' in tax["indicators"]
    assert stored["portal-766"]["total"] == Decimal("71.25") and stored["portal-766"]["rank"] == 7


async def test_newer_overwrites_older_never_and_only_a_write_moves_the_version(reporting: Reporting) -> None:
    at = datetime(2024, 7, 2, 3, tzinfo=UTC)
    await apply(reporting, on_scores_updated, "scoring.scores-updated.v3", body(at, 70))
    v = await version(reporting, "scores")
    await apply(reporting, on_scores_updated, "scoring.scores-updated.v3", body(at - timedelta(hours=1), 99))
    assert (await rows(reporting))["tax-2025"]["total"] == Decimal("70.00")
    assert await version(reporting, "scores") == v  # nothing written, nothing announced
    await apply(reporting, on_scores_updated, "scoring.scores-updated.v3", body(at + timedelta(seconds=1), 72.5))
    assert (await rows(reporting))["tax-2025"]["total"] == Decimal("72.50")
    assert await version(reporting, "scores") == v + 1


async def test_a_provisional_unit_is_never_ranked_and_custom_ranges_are_not_kept(reporting: Reporting) -> None:
    at = datetime(2024, 7, 3, 3, tzinfo=UTC)
    await apply(reporting, on_scores_updated, "scoring.scores-updated.v3", body(at, 60, provisional=True))
    tax = (await rows(reporting))["tax-2025"]
    assert tax["provisional"] and tax["rank"] is None and tax["rank_delta"] is None
    custom = body(at, 60, period="2024-04-01..2024-04-30")
    await apply(reporting, on_scores_updated, "scoring.scores-updated.v3", custom)
    assert await rows(reporting, "2024-04-01..2024-04-30") == {}


async def test_a_malformed_score_message_fails_loudly(reporting: Reporting) -> None:
    bad = body(datetime(2024, 7, 4, tzinfo=UTC), 60)
    bad["units"][0]["scores"]["tax-2025"]["total"] = "lots"
    with pytest.raises(ValueError):
        await apply(reporting, on_scores_updated, "scoring.scores-updated.v3", bad)


async def test_alerts_keep_the_latest_per_key(reporting: Reporting) -> None:
    at = datetime(2024, 7, 5, tzinfo=UTC)
    drop = {
        "period": PERIOD,
        "methodology": "tax-2025",
        "unit_code": UNIT,
        "previous_total": "80.5",
        "total": "70",
        "computed_at": at.isoformat(),
    }
    v = await version(reporting, "warnings")
    await apply(reporting, on_score_alert, "scoring.score-dropped.v1", drop)
    late = drop | {"previous_total": "99", "computed_at": (at - timedelta(hours=1)).isoformat()}
    await apply(reporting, on_score_alert, "scoring.score-dropped.v1", late)
    async with reporting.sessions() as s:
        conn = await driver_connection(s)
        stored = await conn.fetchrow(
            "SELECT previous, current, computed_at FROM reporting.score_alert"
            " WHERE kind = 'score_drop' AND period = $1 AND unit_code = $2",
            PERIOD,
            UNIT,
        )
        await s.rollback()
    assert stored is not None and (stored["previous"], stored["current"], stored["computed_at"]) == ("80.5", "70", at)
    assert await version(reporting, "warnings") >= v + 1
