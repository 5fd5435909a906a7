"""A scripted October 2026 for CT (central), P01 and P02 (provinces), with hand-worked scores.

Catalogue: one procedure TAX1 (5 working days, offered online, with a fee, no returned document,
complete listing, no decision dated in October → 1.1 and 1.2 "no data", 1.3 = 1/1).
P01: A1 perfect and paid online; A2 completed late (due Mon 12 Oct, done 14 Oct), paid at the
counter; A3 on time without an electronic result, not synced, paid online; A4 still open and
overdue at the period's end, no payment. P02: B1, B2 perfect (population data, personal store).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from shared.calendar import VN_TZ
from shared.contracts import RawEvent, UnitRecord, UnitsChanged

NOW = datetime(2026, 11, 5, 9, 0, tzinfo=VN_TZ)
# The API's clock when tests read the scenario (helpers.pin_clock): an hour after the refresh.
READ_AT = NOW + timedelta(hours=1)
_ids = itertools.count(1)

UNITS = UnitsChanged(
    units=[
        UnitRecord(code="CT", name="Cục Thuế", level="central", parent_code=None),
        UnitRecord(code="P01", name="Thuế Thành phố Hà Nội", level="province", parent_code="CT"),
        UnitRecord(code="P02", name="Thuế Thành phố Huế", level="province", parent_code="CT"),
    ]
)

PROCEDURE = RawEvent(
    source="catalogue",
    event_id="proc-1",
    type="procedure.upserted",
    occurred_at="2026-01-01T00:00:00+07:00",
    data={
        "procedure_code": "TAX1",
        "name": "Đăng ký thuế",
        "levels": ["central", "province", "local"],
        "time_limit_wd": 5,
        "online_level_offered": "full",
        "has_fee": True,
        "returns_document": False,
        "target": "both",
        "complete_listing": True,
    },
)


def _at(day: int, hour: int = 9) -> str:
    return datetime(2026, 10, day, hour, tzinfo=VN_TZ).isoformat()


def _ev(kind: str, day: int, dossier_id: str, **data: Any) -> RawEvent:
    return RawEvent(
        source="tms",
        event_id=f"{dossier_id}-{kind}-{next(_ids)}",
        type=f"dossier.{kind}",
        occurred_at=_at(day),
        data={"dossier_id": dossier_id, **data},
    )


def _received(day: int, dossier_id: str, unit: str, channel: str, *, good_data: bool = False) -> RawEvent:
    return _ev(
        "received",
        day,
        dossier_id,
        unit_code=unit,
        procedure_code="TAX1",
        channel=channel,
        officer_id=f"{unit}-o1",
        population_data_used=good_data,
        personal_store_used=good_data,
    )


def dossier_events() -> list[RawEvent]:
    return [
        # P01
        _received(5, "A1", "P01", "online"),
        _ev("components_digitized", 5, "A1", components=2, reused=1, from_personal_store=1),
        _ev("paid", 5, "A1", amount_vnd=100_000, channel="national_portal"),
        _ev("completed", 7, "A1", outcome="approved", result_digitized=True, officer_id="P01-o2"),
        _ev("synced", 7, "A1"),
        _received(5, "A2", "P01", "counter"),
        _ev("paid", 5, "A2", amount_vnd=100_000, channel="counter"),
        _ev("completed", 14, "A2", outcome="approved", result_digitized=True, officer_id="P01-o3"),
        _ev("synced", 14, "A2"),
        _received(6, "A3", "P01", "counter"),
        _ev("paid", 6, "A3", amount_vnd=50_000, channel="gateway"),
        _ev("completed", 8, "A3", outcome="approved", result_digitized=False, officer_id="P01-o2"),
        _received(7, "A4", "P01", "counter"),
        _ev("synced", 7, "A4"),
        # P02
        *[
            e
            for i, d in ((5, "B1"), (6, "B2"))
            for e in (
                _received(i, d, "P02", "online", good_data=True),
                _ev("components_digitized", i, d, components=1, reused=1, from_personal_store=0),
                _ev("paid", i, d, amount_vnd=20_000, channel="national_portal"),
                _ev("completed", i + 1, d, outcome="approved", result_digitized=True, officer_id="P02-o2"),
                _ev("synced", i + 1, d),
            )
        ],
    ]


# Hand-worked figures (see the module docstring and the test for the arithmetic).
EXPECTED: dict[str, dict[str, dict[str, float]]] = {
    "tax-2025": {
        "P01": {"2.1": 10.00, "1.4": 4.50, "3.1": 3.00, "4.6": 3.00, "total": 53.21},
        "P02": {"2.1": 20.00, "1.4": 6.00, "3.1": 6.00, "4.6": 6.00, "total": 90.00},
        "CT": {"2.1": 13.33, "1.4": 5.00, "3.1": 4.00, "4.6": 4.00, "total": 68.69},
    },
    "portal-766": {
        "P01": {
            "DOSSIER_ON_TIME": 10.00,
            "DOSSIER_SYNC": 4.50,
            "ORIGINAL_RESULT_AVAILABLE": 3.00,
            "DOSSIERS_PAID_ONLINE": 3.00,
            "total": 54.71,
        },
        "P02": {
            "DOSSIER_ON_TIME": 20.00,
            "DOSSIER_SYNC": 6.00,
            "ORIGINAL_RESULT_AVAILABLE": 6.00,
            "DOSSIERS_PAID_ONLINE": 6.00,
            "total": 90.00,
        },
        "CT": {
            "DOSSIER_ON_TIME": 13.33,
            "DOSSIER_SYNC": 5.00,
            "ORIGINAL_RESULT_AVAILABLE": 4.00,
            "DOSSIERS_PAID_ONLINE": 4.00,
            "total": 69.69,
        },
    },
}
