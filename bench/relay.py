"""``./sqi bench relay``: outbox rows published per second, with publisher confirms.

On a scratch database (``sqi_bench_relay``, ingest schema only) it commits outbox rows the way
ingest writes them, binds a durable quorum queue to ``bench.ingest.events`` (as the scoring
consumer's is) so every message is really routed and persisted, then lets the relay drain the
outbox and times it: small rows (one event per message) and ingest's 500-event messages.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aio_pika
import orjson

from bench.common import PREFIX, ROOT, drop_database, print_table, recreate_database, say, scratch_settings
from shared import event_loop
from shared.contracts import DossierEventsAccepted

QUEUE = "relay-sink"


def _event(i: int) -> dict[str, object]:
    return {
        "source": "tms-p01",
        "event_id": f"P01-{i:09d}:received",
        "type": "dossier.received",
        "occurred_at": "2026-10-05T08:31:00+07:00",
        "data": {
            "dossier_id": f"P01-{i:09d}",
            "procedure_code": "T.DKT.01",
            "unit_code": "P01.01",
            "due_at": "2026-10-08T17:00:00+07:00",
            "channel": "online",
            "online_level": "full",
            "applicant_type": "business",
            "officer_id": "officer-17",
        },
    }


async def _fill(ingest: object, rows: int, per_message: int) -> int:
    """Commit ``rows`` outbox rows of ``per_message`` events each (in transactions of 50 rows)."""
    n = 0
    for start in range(0, rows, 50):
        async with ingest.uow() as uow:  # type: ignore[attr-defined]
            for _ in range(min(50, rows - start)):
                body = orjson.dumps({"events": [_event(n + i) for i in range(per_message)]})
                uow.publish_raw(routing_key=DossierEventsAccepted.routing_key, body=body)
                n += per_message
    return n


async def _case(settings: object, rows: int, per_message: int, batch: int | None) -> dict[str, float]:
    from services.ingest.adapters.tables import outbox
    from services.ingest.bootstrap import bootstrap
    from shared.messaging.relay import OutboxRelay

    ingest = bootstrap()
    connection = await aio_pika.connect_robust(settings.amqp_url)  # type: ignore[attr-defined]
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(PREFIX + "ingest.events", aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(PREFIX + QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, routing_key="#")
        await queue.purge()
        events = await _fill(ingest, rows, per_message)
        size = len(orjson.dumps({"events": [_event(0) for _ in range(per_message)]}))
        kwargs = {"batch": batch} if batch else {}
        relay = OutboxRelay(
            engine=ingest.engine,
            outbox=outbox,
            connection=connection,
            listen_dsn=settings.asyncpg_dsn,  # type: ignore[attr-defined]
            prefix=PREFIX,
            **kwargs,
        )
        confirm_channel = await connection.channel(publisher_confirms=True)
        published = 0
        t0 = time.perf_counter()
        while published < rows:
            n = await relay.publish_pending(confirm_channel)
            if n == 0:
                break
            published += n
        seconds = time.perf_counter() - t0
        await confirm_channel.close()
        # A plain connection: a robust one answers a passive declare from its cache.
        plain = await aio_pika.connect(settings.amqp_url)  # type: ignore[attr-defined]
        async with plain:
            declared = await (await plain.channel()).declare_queue(PREFIX + QUEUE, passive=True)
            depth = declared.declaration_result.message_count
        await queue.purge()
        async with ingest.engine.begin() as conn:
            from sqlalchemy import delete

            await conn.execute(delete(outbox))
        return {
            "rows": published,
            "events": events,
            "size": size,
            "seconds": seconds,
            "queued": float(depth or 0),
        }
    finally:
        await connection.close()
        await ingest.dispose()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="./sqi bench relay", description=__doc__)
    p.add_argument("--small-rows", type=int, default=10_000, help="one-event rows (default 10,000)")
    p.add_argument("--big-rows", type=int, default=400, help="500-event rows (default 400 = 200,000 events)")
    p.add_argument("--batch", type=int, default=0, help="relay batch size (default: the relay's own)")
    args = p.parse_args(argv)
    from shared.migrations import upgrade
    from shared.telemetry import configure_telemetry

    configure_telemetry("bench-relay", logs=False)  # instrumented as a worker is
    settings = scratch_settings("sqi_bench_relay")
    asyncio.run(recreate_database(settings.asyncpg_dsn))
    results = []
    try:
        upgrade(ROOT / "services/ingest/migrations", settings.database_url)
        for rows, per_message in ((args.small_rows, 1), (args.big_rows, 500)):
            say(f"bench relay: {rows:,} rows of {per_message} event(s)…")
            results.append(event_loop.run(_case(settings, rows, per_message, args.batch or None)))
    finally:

        async def cleanup() -> None:
            connection = await aio_pika.connect(settings.amqp_url)
            async with connection:
                channel = await connection.channel()
                await channel.queue_delete(PREFIX + QUEUE)
                await channel.exchange_delete(PREFIX + "ingest.events")

        asyncio.run(cleanup())
        asyncio.run(drop_database(settings.asyncpg_dsn))
    rows_out = [
        [
            f"{r['events'] / r['rows']:.0f}",
            f"{r['size'] / 1024:,.1f} KiB",
            r["rows"],
            r["rows"] / r["seconds"],
            r["events"] / r["seconds"],
            r["rows"] / r["seconds"] * r["size"] / 2**20,
            r["seconds"],
            int(r["queued"]),
        ]
        for r in results
    ]
    print_table(
        "relay: outbox → RabbitMQ (quorum queue), publisher confirms",
        ["events/msg", "body", "rows", "rows/s", "events/s", "MiB/s", "seconds", "in queue"],
        rows_out,
    )
    return 0
