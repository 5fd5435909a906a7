"""Reference data at set-up: the units and the procedure catalogue of ``data/reference``.

Procedures enter as ordinary ``procedure.upserted`` events from the source ``sqi-reference``
(deterministic ids, so seeding twice only adds duplicates): they are in the raw log like
everything else, and a recompute from the log sees the same catalogue.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from typing import Any

from services.ingest import units
from services.ingest.bootstrap import Ingest, bootstrap
from services.ingest.handlers import ingest_events
from shared.identity import Principal
from shared.rating_code import RatingCodes


class _NoRatingCodes(RatingCodes):
    """The reference data is units and procedures, no receipt: no rating code to issue. So the
    migration Job, which seeds it, is given no rating-code key (docs/decisions.md)."""

    def __init__(self) -> None:
        pass

    def issue(self, dossier_id: str, unit_code: str) -> str:
        raise RuntimeError("the reference data issues no rating code")


def reference_app() -> Ingest:
    """Ingest's parts for seeding the reference data: without the rating-code keys."""
    return bootstrap(rating_codes=_NoRatingCodes())


REFERENCE_SOURCE = "sqi-reference"
PUBLISHED_AT = "2025-07-01T00:00:00+07:00"


def procedure_events(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"reference:{r['procedure_code']}:1",
            "type": "procedure.upserted",
            "occurred_at": PUBLISHED_AT,
            "source": REFERENCE_SOURCE,
            "data": {
                "procedure_code": r["procedure_code"],
                "name": r["name"],
                "field": r["field"],
                "levels": r["levels"].split(";"),
                "time_limit_wd": int(r["time_limit_wd"]) if r["time_limit_wd"] else None,
                "online_level_offered": r["online_level_offered"],
                "has_fee": r["has_fee"] == "true",
                "returns_document": r["returns_document"] == "true",
                "target": r["target"],
                # The sample lists only procedures the administration has published in full.
                "complete_listing": True,
                "legal_effective_date": None,
                "published_decision_date": None,
                "publicized_at": None,
            },
        }
        for r in rows
    ]


async def seed(ingest: Ingest) -> tuple[int, int]:
    """(units inserted, procedure events accepted)."""
    reference_dir = ingest.settings.reference_dir
    async with ingest.uow() as uow:
        inserted = await units.seed_units(reference_dir / "units.csv", uow=uow)
    with (reference_dir / "procedures.csv").open(encoding="utf-8") as fh:
        events = procedure_events(list(csv.DictReader(fh)))
    await ingest.reference.reload()
    reference = await ingest.reference.get()
    root = next(code for code, unit in reference.units.items() if unit.parent_code is None)
    principal = Principal(kind="integrator", sub=REFERENCE_SOURCE, source=REFERENCE_SOURCE, units=(root,))
    async with ingest.uow() as uow:
        result = await ingest_events(
            events,
            principal=principal,
            uow=uow,
            reference=reference,
            rating_codes=ingest.rating_codes,
            now=datetime.now(UTC),
        )
    if result.rejected:
        raise RuntimeError(f"reference procedures rejected: {result.as_json()['rejected'][:3]}")
    return inserted, result.accepted
