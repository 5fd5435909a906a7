"""One trace from the integrator's HTTP call to a consumer's handler, with the DB spans inside.

Gateway and ingest run as real HTTP servers in this process, so one in-memory exporter sees
every span: gateway → ingest → outbox relay → broker → consumer handler.
"""

from __future__ import annotations

import asyncio
import os

import aio_pika
import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from gateway.app import create_app as create_gateway
from gateway.keys import create_key
from gateway.settings import GatewaySettings
from services.ingest.adapters.tables import outbox
from services.ingest.api.app import create_app as create_ingest
from services.ingest.bootstrap import bootstrap
from services.ingest.seed import seed
from shared.messaging.consumer import Consumer
from shared.messaging.relay import OutboxRelay
from shared.messaging.topology import IncomingMessage, Subscription
from shared.migrations import upgrade
from shared.telemetry import configure_telemetry
from shared.unit_of_work import UnitOfWork
from sqi_cli.scratch import delete_broker_objects, free_port_block, recreate_database, scratch_database_url

pytestmark = pytest.mark.integration
DB = scratch_database_url("sqi_test_trace")


async def serve(app: object, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    return server, task


async def scenario(exporter: InMemorySpanExporter) -> None:
    base = free_port_block(2)
    os.environ["SQI_DATABASE_URL"] = DB
    from pathlib import Path

    await recreate_database(DB.replace("+asyncpg", ""))
    root = Path(__file__).resolve().parents[2]
    await asyncio.to_thread(upgrade, root / "gateway/migrations", DB)
    await asyncio.to_thread(upgrade, root / "services/ingest/migrations", DB)
    ingest = bootstrap()
    await seed(ingest)
    settings = GatewaySettings(database_url=DB, ingest_url=f"http://127.0.0.1:{base + 1}")
    gateway_app = create_gateway(settings)
    async with gateway_app.state.gateway.sessions() as session, session.begin():
        key = (await create_key(session, source="tms-trace", units=["P01"], created_by="test")).key
    servers = [await serve(gateway_app, base), await serve(create_ingest(ingest), base + 1)]
    handled = asyncio.Event()

    async def handler(message: IncomingMessage, uow: UnitOfWork) -> None:
        await uow.session.execute(text("SELECT 1"))
        handled.set()

    sub = Subscription(
        queue="trace-test", exchange="ingest.events", routing_keys=["ingest.dossier-events.v1"], handler=handler
    )
    connection = await aio_pika.connect_robust(ingest.settings.amqp_url)
    try:
        consumer = Consumer(uow_factory=ingest.uow, inbox=_inbox(), prefix=ingest.settings.bus_prefix)
        await consumer.start(await connection.channel(), [sub])
        exporter.clear()
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"http://127.0.0.1:{base}/api/v1/events",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "event_id": "t1",
                    "type": "dossier.synced",
                    "occurred_at": "2026-10-05T08:31:00+07:00",
                    "source": "tms-trace",
                    "data": {"dossier_id": "TRACE-1"},
                },
            )
        assert response.status_code == 200, response.text
        relay = OutboxRelay(
            engine=ingest.engine,
            outbox=outbox,
            connection=connection,
            listen_dsn=ingest.settings.asyncpg_dsn,
            prefix=ingest.settings.bus_prefix,
        )
        assert await relay.publish_pending(await connection.channel(publisher_confirms=True)) >= 1
        await asyncio.wait_for(handled.wait(), 20)
        await asyncio.sleep(0.3)
    finally:
        await connection.close()
        for server, task in servers:
            server.should_exit = True
            await task
        await delete_broker_objects(ingest.settings, ["trace-test"], ["ingest.events"])


def _inbox():  # type: ignore[no-untyped-def]
    from services.ingest.adapters.tables import inbox

    return inbox


def test_one_trace_from_gateway_to_consumer_handler() -> None:
    exporter = InMemorySpanExporter()
    configure_telemetry("test", exporter=exporter, logs=False)
    previous = os.environ.get("SQI_DATABASE_URL")
    try:
        asyncio.run(scenario(exporter))
    finally:
        if previous is not None:
            os.environ["SQI_DATABASE_URL"] = previous
    spans = exporter.get_finished_spans()
    [ingest_server] = [s for s in spans if s.kind.name == "SERVER" and s.name == "POST /api/v1/events"]
    trace_id = ingest_server.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    names = [s.name for s in in_trace]
    # The gateway's server span is in the same trace; its httpx client span is ingest's parent.
    assert "POST /{path:path}" in names, names
    assert any(s.kind.name == "CLIENT" and s.context.span_id == ingest_server.parent.span_id for s in in_trace), names
    assert "outbox relay" in names, names
    assert any(s.kind.name == "PRODUCER" for s in in_trace), names
    consumer_spans = [s for s in in_trace if s.kind.name == "CONSUMER"]
    assert consumer_spans, names
    db_spans = [s for s in in_trace if s.attributes and s.attributes.get("db.system") == "postgresql"]
    assert db_spans, names
    # The handler's own query ran inside the consumer span.
    consumer_ids = {s.context.span_id for s in consumer_spans}
    assert any(s.parent is not None and s.parent.span_id in consumer_ids for s in db_spans), names
