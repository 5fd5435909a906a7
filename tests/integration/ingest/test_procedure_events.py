"""A procedure event is about a procedure: a ``dossier_id`` among its extra fields names nothing."""

from __future__ import annotations

import pytest

from services.ingest.bootstrap import Ingest
from tests.integration.ingest.conftest import ingest_records, new_id, procedure_upsert, received, sql

pytestmark = pytest.mark.integration
SOURCE = "tms-catalogue"


async def test_a_stray_dossier_id_in_a_procedure_event_is_not_a_dossier(ingest: Ingest) -> None:
    # Another unit's dossier: a dossier event of this key naming it would be forbidden.
    dossier = new_id()
    async with ingest.uow() as uow:
        owned = await ingest_records(
            ingest, [received("tms-p29", dossier, unit="P29")], uow, source="tms-p29", units=("P29",)
        )
    assert owned.accepted == 1
    code = f"T.STRAY.{new_id()}"
    upsert = procedure_upsert(SOURCE, code, dossier_id=dossier)
    async with ingest.uow() as uow:
        result = await ingest_records(ingest, [upsert], uow, source=SOURCE, units=("CT",))
    assert result.accepted == 1, result.rejected
    logged = await sql(ingest, "SELECT dossier_id FROM ingest.event_log WHERE event_id = :e", e=f"{code}:upsert")
    assert [r.dossier_id for r in logged] == [None]
