"""Replays run as worker jobs: chunked into the outbox, in log order, resumable without repeats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, text, update

from services.ingest import replay as replay_module
from services.ingest.adapters.tables import outbox, replay
from services.ingest.bootstrap import bootstrap
from services.ingest.handlers import ingest_events
from services.ingest.seed import seed
from services.ingest.settings import IngestSettings
from shared.identity import Principal
from shared.migrations import upgrade
from sqi_cli.scratch import recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_replay")


def events(n: int) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"r{i:04d}",
            "type": "dossier.synced",
            "occurred_at": f"2026-10-{1 + i % 28:02d}T08:00:00+07:00",
            "source": "tms-r",
            "data": {"dossier_id": f"R-{i}"},
        }
        for i in range(n)
    ]


async def scenario(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[str], dict[str, object]]:
    await recreate_database(DB.replace("+asyncpg", ""))
    await asyncio.to_thread(upgrade, Path(__file__).resolve().parents[2] / "services/ingest/migrations", DB)
    app = bootstrap(IngestSettings(database_url=DB))
    await seed(app)
    reference = await app.reference.get()
    async with app.uow() as uow:
        await ingest_events(
            events(95),
            principal=Principal(kind="integrator", source="tms-r", units=("CT",)),
            uow=uow,
            reference=reference,
            rating_codes=app.rating_codes,
            now=datetime.now(UTC),
        )
    async with app.uow() as uow:
        await uow.session.execute(text("DELETE FROM ingest.outbox"))
        replay_id = await replay_module.request_replay(
            consumer="test-consumer",
            occurred_from=datetime(2026, 10, 1, tzinfo=UTC),
            occurred_to=None,
            requested_by="t",
            uow=uow,
        )
    monkeypatch.setattr(replay_module, "BATCH", 10)
    monkeypatch.setattr(replay_module, "CHUNK_BATCHES", 3)
    # A first worker dies after its first chunk: simulate by failing the second chunk's query.
    async with app.uow() as uow:
        job = await replay_module.claim_replay(uow)
    assert job is not None and job.replay_id == replay_id
    real = replay_module.select
    calls = {"n": 0}

    def failing_select(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(replay_module, "select", failing_select)
    with pytest.raises(RuntimeError):
        await replay_module.run_replay(job, app.uow)
    monkeypatch.setattr(replay_module, "select", real)
    # Its heartbeat goes stale; another worker takes the job up and finishes it.
    async with app.uow() as uow:
        await uow.session.execute(
            update(replay).values(heartbeat_at=datetime(2020, 1, 1, tzinfo=UTC)).where(replay.c.replay_id == replay_id)
        )
        job = await replay_module.claim_replay(uow)
    assert job is not None and job.messages == 3 and job.events == 30
    await replay_module.run_replay(job, app.uow)
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(outbox.c.routing_key, outbox.c.body, outbox.c.created_at))).all()
        status = await replay_module.replay_status(replay_id, uow=uow)
    await app.dispose()
    # In the order the chunks were written (each chunk's rows share its transaction's time), and
    # within a chunk by batch number (rows of one transaction have no order of their own).
    written = sorted(
        ((r.created_at, orjson.loads(r.body)) for r in rows),
        key=lambda w: (w[0], "batch_no" not in w[1], w[1].get("batch_no", 0)),
    )
    bodies = [b for _, b in written]
    assert {r.routing_key for r in rows} == {"replay.test-consumer"}
    batch_numbers = [b["batch_no"] for b in bodies if "batch_no" in b]
    ids = [e["event_id"] for b in bodies if "batch_no" in b for e in b["events"]]
    return batch_numbers, ids, {**(status or {}), "finished": bodies[-1]}


def test_replay_is_chunked_ordered_and_resumes_without_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    batch_numbers, ids, status = asyncio.run(scenario(monkeypatch))
    assert batch_numbers == list(range(10))
    assert len(ids) == len(set(ids)) == 95  # every event once, none repeated by the resume
    assert status["status"] == "done" and status["events"] == 95 and status["messages"] == 10
    assert status["finished"] == {
        "replay_id": status["replay_id"],
        "consumer": "test-consumer",
        "batches": 10,
        "events": 95,
    }


def test_replay_messages_are_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event may carry extra fields up to a request's size: a replay message holds at most
    ``MAX_MESSAGE_BYTES`` of events (one larger event alone), every event once, in order."""
    monkeypatch.setattr(replay_module, "MAX_MESSAGE_BYTES", 25_000)

    class Row:
        def __init__(self, i: int, pad: int) -> None:
            self.source, self.event_id, self.type = "tms-r", f"b{i:03d}", "dossier.synced"
            self.occurred_at = datetime(2026, 10, 1, tzinfo=UTC)
            self.body = {"occurred_at": "2026-10-01T08:00:00z", "data": {"dossier_id": f"R-{i}", "pad": "x" * pad}}

    rows = [Row(i, 40_000 if i == 7 else 2_000) for i in range(30)]
    bodies = replay_module.batch_bodies("rid", "test-consumer", 4, rows)
    decoded = [orjson.loads(b) for b in bodies]
    assert [d["batch_no"] for d in decoded] == list(range(4, 4 + len(bodies)))
    assert [e["event_id"] for d in decoded for e in d["events"]] == [f"b{i:03d}" for i in range(30)]
    for body, d in zip(bodies, decoded, strict=True):
        assert len(body) <= 25_000 + 200 or [e["event_id"] for e in d["events"]] == ["b007"]
    assert {d["consumer"] for d in decoded} == {"test-consumer"} and decoded[0]["replay_id"] == "rid"
    assert decoded[0]["events"][0]["occurred_at"] == "2026-10-01T08:00:00+00:00"  # the live stream's form
    assert len(bodies) > 3  # split by size, not by the 500 events a message
