"""A replay hands consumers the same event times as the live stream did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.ingest import replay as replay_module
from services.ingest.bootstrap import Ingest
from shared.contracts import DossierEventsAccepted, replay_routing_key
from tests.integration.ingest.conftest import ingest_records, new_id, procedure_upsert, sql

pytestmark = pytest.mark.integration
SOURCE = "tms-audit-replay"


async def replayed(
    ingest: Ingest, consumer: str, occurred_from: datetime, occurred_to: datetime
) -> list[dict[str, Any]]:
    """The events a replay of that window hands ``consumer`` (every pending job of this database
    run, ours among them)."""
    async with ingest.uow() as uow:
        await replay_module.request_replay(
            consumer=consumer, occurred_from=occurred_from, occurred_to=occurred_to, requested_by="audit", uow=uow
        )
    while True:
        async with ingest.uow() as uow:
            job = await replay_module.claim_replay(uow)
        if job is None:
            break
        await replay_module.run_replay(job, ingest.uow)
    rows = await sql(ingest, "SELECT body FROM ingest.outbox WHERE routing_key = :k", k=replay_routing_key(consumer))
    # The ReplayBatch messages, not the ReplayFinished that counts them.
    return [e for r in rows if "batch_no" in (b := orjson.loads(r.body)) for e in b["events"]]


async def test_a_replayed_time_reads_as_the_live_one(ingest: Ingest) -> None:
    """RFC 3339 allows a lower-case ``z``; Python's ``fromisoformat`` (which every consumer uses)
    does not: the replay must not pass the text as sent where the live stream passed the time."""
    dossier = new_id()
    sent = {
        "dossier.synced": "2026-10-05T01:31:00z",
        "dossier.result_returned": "2026-10-05T08:31:00.123456789+07:00",
    }
    records = [
        {"event_id": f"{dossier}:{t}", "type": t, "occurred_at": at, "source": SOURCE, "data": {"dossier_id": dossier}}
        for t, at in sent.items()
    ]
    async with ingest.uow() as uow:
        result = await ingest_records(ingest, records, uow, source=SOURCE, units=("P01",))
    assert result.accepted == 2, result.rejected
    live = {
        e["event_id"]: e["occurred_at"]
        for r in await sql(
            ingest, "SELECT body FROM ingest.outbox WHERE routing_key = :k", k=DossierEventsAccepted.routing_key
        )
        for e in orjson.loads(r.body)["events"]
        if e["data"]["dossier_id"] == dossier
    }
    assert len(live) == 2
    replayed_events = await replayed(
        ingest, "audit-replay", datetime(2026, 10, 4, tzinfo=UTC), datetime(2026, 10, 6, tzinfo=UTC)
    )
    replayed_times = {e["event_id"]: e["occurred_at"] for e in replayed_events if e["data"]["dossier_id"] == dossier}
    assert replayed_times == live
    for at in replayed_times.values():
        assert datetime.fromisoformat(at).tzinfo is not None


async def test_times_inside_data_reach_consumers_readable(ingest: Ingest) -> None:
    """A ``due_at`` or ``publicized_at`` sent with a lower-case ``z`` is accepted (RFC 3339): the
    messages must carry it in a form the consumers' ``fromisoformat`` reads, live and replayed,
    while the raw log keeps the event exactly as sent."""
    dossier, code = new_id(), f"AUDIT.{new_id()}"
    records = [
        procedure_upsert(SOURCE, code, publicized_at="2026-09-01T01:00:00z"),
        {
            "event_id": f"{dossier}:rcv",
            "type": "dossier.received",
            "occurred_at": "2026-10-05T08:31:00+07:00",
            "source": SOURCE,
            "data": {
                "dossier_id": dossier,
                "procedure_code": code,  # published by this very request
                "unit_code": "P01",
                "due_at": "2026-10-20T10:00:00z",
                "channel": "online",
                "online_level": "full",
                "applicant_type": "citizen",
            },
        },
        {
            "event_id": f"{dossier}:sup",
            "type": "dossier.supplement_received",
            "occurred_at": "2026-10-07T08:31:00+07:00",
            "source": SOURCE,
            "data": {"dossier_id": dossier, "due_at": "2026-10-22T10:00:00z"},
        },
    ]
    async with ingest.uow() as uow:
        result = await ingest_records(ingest, records, uow, source=SOURCE, units=("CT",))
    assert result.accepted == 3, result.rejected
    expected = {
        "publicized_at": datetime(2026, 9, 1, 1, tzinfo=UTC),
        f"{dossier}:rcv": datetime(2026, 10, 20, 10, tzinfo=UTC),
        f"{dossier}:sup": datetime(2026, 10, 22, 10, tzinfo=UTC),
    }

    def times(events: list[dict[str, object]]) -> dict[str, datetime]:
        out = {}
        for e in events:
            data = e["data"]
            assert isinstance(data, dict)
            if e["event_id"] == f"{code}:upsert":
                out["publicized_at"] = datetime.fromisoformat(data["publicized_at"])
            elif data.get("dossier_id") == dossier:
                out[str(e["event_id"])] = datetime.fromisoformat(data["due_at"])
        return out

    live = [
        e
        for r in await sql(ingest, "SELECT body FROM ingest.outbox WHERE routing_key <> 'x'")
        if isinstance(events := orjson.loads(r.body).get("events"), list)
        for e in events
    ]
    assert times(live) == expected
    # The raw log keeps what was sent.
    logged = await sql(
        ingest, "SELECT body->'data'->>'due_at' AS d FROM ingest.event_log WHERE dossier_id = :d", d=dossier
    )
    assert sorted(r.d for r in logged) == ["2026-10-20T10:00:00z", "2026-10-22T10:00:00z"]
    replayed_events = await replayed(
        ingest, "audit-replay-data", datetime(2026, 9, 30, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC)
    )
    assert times(replayed_events) == expected
