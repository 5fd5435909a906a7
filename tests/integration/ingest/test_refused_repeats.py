"""A changed resend repeated inside one request is a conflict every time, never a duplicate."""

from __future__ import annotations

import httpx
import pytest

from services.ingest.bootstrap import Ingest
from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import headers, integrator, new_id, received, sql

pytestmark = pytest.mark.integration


async def test_a_changed_resend_sent_twice_in_one_request_is_two_conflicts(
    client: httpx.AsyncClient, settings: IngestSettings, ingest: Ingest
) -> None:
    source, key = "tms-audit-resend", integrator("tms-audit-resend", "P01")
    dossier = new_id()
    first = received(source, dossier, channel="online")
    stored = await client.post("/api/v1/events", json=[first], headers=headers(settings, key))
    assert stored.status_code == 200 and stored.json()["accepted"] == 1, stored.text
    changed = received(source, dossier, channel="counter")  # same event id, another body
    answer = await client.post("/api/v1/events", json=[changed, changed], headers=headers(settings, key))
    # Nothing was accepted: the whole request is refused, each copy with the conflict's reason.
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["accepted"] == 0 and body["duplicates"] == 0 and body["rating_codes"] == {}
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert all("conflict" in r["errors"][0]["reason"] for r in body["rejected"])
    # The first version stays.
    logged = await sql(
        ingest, "SELECT body->'data'->>'channel' AS c FROM ingest.event_log WHERE dossier_id = :d", d=dossier
    )
    assert [r.c for r in logged] == ["online"]
    feed = await sql(ingest, "SELECT duplicates, rejected FROM ingest.feed_day WHERE source = :s", s=source)
    assert [(r.duplicates, r.rejected) for r in feed] == [(0, 2)]
