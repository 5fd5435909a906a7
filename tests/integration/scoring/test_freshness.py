"""Freshness: from a batch's acceptance by ingest to the first committed score that counts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select

from services.scoring.adapters.repository import load_procedures
from services.scoring.adapters.tables import outbox
from services.scoring.application.judging import judge_flagged_chunk
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.domain import parse_period
from services.scoring.handlers.messages import apply_dossier_events, on_message
from shared.contracts import DossierEventsAccepted
from shared.messaging.topology import IncomingMessage
from shared.telemetry import configure_telemetry
from tests.metric_samples import sample

from .helpers import load_reference
from .scenario import NOW, dossier_events

pytestmark = pytest.mark.integration


def observed() -> tuple[float, float]:
    """``sqi_freshness_seconds``: observations and their sum so far."""
    return sample("sqi_freshness_seconds_count"), sample("sqi_freshness_seconds_sum")


async def test_each_batch_is_observed_once_when_first_counted(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    accepted = datetime.now(UTC) - timedelta(seconds=3)
    events = dossier_events()
    for n, half in enumerate((events[: len(events) // 2], events[len(events) // 2 :])):
        body = orjson.dumps({"events": [e.model_dump() for e in half], "accepted_at": accepted.isoformat()})
        async with clean.uow() as uow:
            await on_message(IncomingMessage(f"m{n}", DossierEventsAccepted.routing_key, body), uow)
    count0, sum0 = observed()
    done = await refresh_once(clean, now=NOW)
    assert {"2026-10", "2026-Q4", "2026"} <= set(done)
    count1, sum1 = observed()
    # Both messages share one acceptance time (one ingest batch): one observation, ≥ 3 s.
    assert count1 == count0 + 1 and sum1 - sum0 >= 3
    assert await refresh_once(clean, now=NOW) == [] and observed()[0] == count1


async def test_a_refresh_observes_its_judging_step_and_each_recomputation(clean: Scoring) -> None:
    await load_reference(clean, NOW)
    async with clean.uow() as uow:
        await apply_dossier_events(dossier_events(), uow, now=NOW)
    steps, judged = sample("sqi_judging_step_seconds_count"), sample("sqi_dossiers_judged_total")
    before = {k: sample("sqi_period_recompute_seconds_count", kind=k) for k in ("month", "quarter", "year")}
    done = await refresh_once(clean, now=NOW)
    assert {"2026-10", "2026-Q4", "2026"} <= set(done)
    assert sample("sqi_judging_step_seconds_count") == steps + 1
    assert sample("sqi_dossiers_judged_total") == judged + 6  # A1–A4, B1, B2
    for kind, count in before.items():  # one observation per period recomputed, by its kind
        done_of_kind = [label for label in done if parse_period(label).kind == kind]
        assert sample("sqi_period_recompute_seconds_count", kind=kind) == count + len(done_of_kind)
    # A tick with nothing to judge or recompute observes nothing.
    assert await refresh_once(clean, now=NOW) == []
    assert sample("sqi_judging_step_seconds_count") == steps + 1


async def test_the_refresh_span_links_to_the_traces_it_counted(clean: Scoring) -> None:
    exporter = InMemorySpanExporter()
    configure_telemetry("scoring-test", exporter=exporter, logs=False)
    tracer = trace.get_tracer("test")
    await load_reference(clean, NOW)
    body = orjson.dumps({"events": [e.model_dump() for e in dossier_events()]})
    with tracer.start_as_current_span("consume ingest batch") as consumer:
        async with clean.uow() as uow:
            await on_message(IncomingMessage("t1", DossierEventsAccepted.routing_key, body), uow)
    trace_id = consumer.get_span_context().trace_id
    await refresh_once(clean, now=NOW)
    refreshes = [s for s in exporter.get_finished_spans() if s.name == "scoring refresh"]
    assert {s.attributes["sqi.period"] for s in refreshes} >= {"2026-10", "2026-Q4", "2026"}
    assert all(any(link.context.trace_id == trace_id for link in s.links) for s in refreshes)
    # The score events leave inside the refresh span: the trace goes on to their consumers.
    async with clean.sessions() as s:
        headers = (await s.scalars(select(outbox.c.trace_headers))).all()
    refresh_traces = {f"{s.context.trace_id:032x}" for s in refreshes}
    assert headers and all(h and h["traceparent"].split("-")[1] in refresh_traces for h in headers)


async def test_a_dossier_accepted_after_the_tick_began_waits_for_the_next_tick(clean: Scoring) -> None:
    """Its facts are in the future of the tick's judging instant: judged now, it would only be
    judged again (a recheck at its own time); it is judged once, by the next tick."""
    await load_reference(clean, NOW)
    began = datetime.now(UTC)
    events = dossier_events()
    async with clean.uow() as uow:
        await apply_dossier_events(events, uow, now=NOW, accepted_at=began + timedelta(milliseconds=5))
    async with clean.sessions() as s:
        procedures = await load_procedures(s)

    async def judge(accepted_before: datetime) -> int:
        async with clean.uow() as uow:
            return await judge_flagged_chunk(
                uow.session, now=NOW, calendar=clean.calendar, procedures=procedures, accepted_before=accepted_before
            )

    assert await judge(began) == 0
    assert await judge(began + timedelta(seconds=1)) == len({e.data["dossier_id"] for e in events})
