"""``./sqi bench bare``: the bare pipeline — what these Postgres and RabbitMQ allow at most.

The yardstick the platform's end-to-end figure is compared with (issue 9: end to end ≥ 50 % of
it). No SQI code on the path, only what any such pipeline must do:

1. a producer takes batches of events (5,000, the size of an ingest request), COPYs each into a
   raw table in one transaction, then publishes it as 500-event messages (orjson bodies) to a
   durable quorum queue with publisher confirms, all of a batch's confirms awaited together;
   ``--producers`` batches are in flight at once;
2. a consumer process (the second core, as the platform's workers are separate processes) takes
   the messages with a prefetch window and applies each in ONE transaction: an inbox row (the
   message id, deduped on conflict) and a COPY of its events into an applied table; ack after
   commit.

Reports events/s (first batch started → last message committed) and, per batch, the latency from
its start to the commit of its last message (p50/p99). Everything lives in a scratch database
(``sqi_bench_bare`` + ``SQI_TEST_DB_SUFFIX``) and a ``bench.bare.<pid>.`` queue and exchange,
removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import aio_pika
import asyncpg
import orjson

from bench.common import percentile, print_table, say
from shared import event_loop
from shared.settings import CommonSettings
from sqi_cli.scratch import drop_database, recreate_database

SCHEMA = """
CREATE TABLE raw_event (
    source text NOT NULL, event_id text NOT NULL, type text NOT NULL, occurred_at timestamptz NOT NULL,
    dossier_id text, body jsonb NOT NULL, accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id));
CREATE TABLE inbox (message_id text PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE applied (
    source text NOT NULL, event_id text NOT NULL, dossier_id text NOT NULL, type text NOT NULL,
    occurred_at timestamptz NOT NULL, data jsonb NOT NULL, PRIMARY KEY (source, event_id));
"""
RAW_COLUMNS = ["source", "event_id", "type", "occurred_at", "dossier_id", "body"]
APPLIED_COLUMNS = ["source", "event_id", "dossier_id", "type", "occurred_at", "data"]
T0 = datetime(2026, 10, 5, 1, 31, tzinfo=UTC)


@dataclass(frozen=True)
class BareOptions:
    events: int = 200_000
    batch: int = 5_000
    per_message: int = 500
    producers: int = 4
    prefetch: int = 16
    timeout: float = 300.0


@dataclass(frozen=True)
class BareResult:
    events: int
    messages: int
    seconds: float
    events_per_s: float
    batch_p50_ms: float
    batch_p99_ms: float

    def as_row(self) -> list[object]:
        return [self.events, self.messages, self.seconds, self.events_per_s, self.batch_p50_ms, self.batch_p99_ms]


def _event(i: int) -> dict[str, Any]:
    """One event the shape of the simulator's (``dossier.received``, ~330 bytes)."""
    return {
        "source": "tms-p01",
        "event_id": f"P01-{i:09d}:received",
        "type": "dossier.received",
        "occurred_at": (T0 + timedelta(seconds=i % 86_400)).isoformat(),
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


def scratch_dsn(name: str = "sqi_bench_bare") -> str:
    """The scratch database's asyncpg DSN on the platform's Postgres (suffixed per engineer)."""
    base = urlparse(CommonSettings().asyncpg_dsn)
    return base._replace(path=f"/{name}{os.environ.get('SQI_TEST_DB_SUFFIX', '')}").geturl()


# -- consumer (its own process) ------------------------------------------------------------------
def _consumer_process(dsn: str, amqp_url: str, queue: str, expected: int, prefetch: int, out: Any) -> None:
    try:
        out.send(event_loop.run(_consume(dsn, amqp_url, queue, expected, prefetch, lambda: out.send("ready"))))
    except BaseException as exc:  # the parent reports it; a silent child would hang the run
        out.send(repr(exc))
    finally:
        out.close()


async def _consume(
    dsn: str, amqp_url: str, queue_name: str, expected: int, prefetch: int, ready: Any
) -> list[tuple[int, float]]:
    """Apply ``expected`` messages, one transaction each; answer (batch, commit time) per message."""
    db = await asyncpg.connect(dsn)
    connection = await aio_pika.connect(amqp_url)
    done: list[tuple[int, float]] = []
    finished = asyncio.Event()
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.declare_queue(queue_name, passive=True)
        lock = asyncio.Lock()  # one message at a time, in order, as a single consumer applies them

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with lock:
                events = orjson.loads(message.body)["events"]
                records = [
                    (
                        e["source"],
                        e["event_id"],
                        e["data"]["dossier_id"],
                        e["type"],
                        datetime.fromisoformat(e["occurred_at"]),
                        orjson.dumps(e["data"]).decode(),
                    )
                    for e in events
                ]
                async with db.transaction():
                    fresh = await db.fetchval(
                        "INSERT INTO inbox (message_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true",
                        message.message_id,
                    )
                    if fresh:
                        await db.copy_records_to_table("applied", records=records, columns=APPLIED_COLUMNS)
                await message.ack()
                done.append((int((message.headers or {}).get("batch", -1)), time.time()))  # type: ignore[arg-type]
                if len(done) >= expected:
                    finished.set()

        await queue.consume(on_message)
        ready()
        await finished.wait()
    finally:
        await connection.close()
        await db.close()
    return done


# -- producer ------------------------------------------------------------------------------------
async def _produce(dsn: str, amqp_url: str, exchange_name: str, opts: BareOptions) -> dict[int, float]:
    """Every batch: COPY into the raw table, then publish its messages with confirms. Answers start times."""
    batches = (opts.events + opts.batch - 1) // opts.batch
    pool = await asyncpg.create_pool(dsn, min_size=opts.producers, max_size=opts.producers)
    connection = await aio_pika.connect(amqp_url)
    started: dict[int, float] = {}
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name)
        todo: asyncio.Queue[int | None] = asyncio.Queue()
        for b in range(batches):
            todo.put_nowait(b)
        for _ in range(opts.producers):
            todo.put_nowait(None)

        async def worker() -> None:
            while (b := await todo.get()) is not None:
                first = b * opts.batch
                events = [_event(i) for i in range(first, min(first + opts.batch, opts.events))]
                started[b] = time.time()
                records = [
                    (
                        e["source"],
                        e["event_id"],
                        e["type"],
                        datetime.fromisoformat(e["occurred_at"]),
                        e["data"]["dossier_id"],
                        orjson.dumps(e).decode(),
                    )
                    for e in events
                ]
                async with pool.acquire() as db, db.transaction():
                    await db.copy_records_to_table("raw_event", records=records, columns=RAW_COLUMNS)
                confirms = [
                    exchange.publish(
                        aio_pika.Message(
                            orjson.dumps({"events": events[i : i + opts.per_message]}),
                            message_id=f"{b}:{i}",
                            headers={"batch": b},
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key="bare.events",
                    )
                    for i in range(0, len(events), opts.per_message)
                ]
                await asyncio.gather(*confirms)

        await asyncio.gather(*(worker() for _ in range(opts.producers)))
    finally:
        await connection.close()
        await pool.close()
    return started


async def _topology(amqp_url: str, exchange: str, queue: str, *, delete: bool = False) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        if delete:
            await channel.queue_delete(queue)
            await channel.exchange_delete(exchange)
            return
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        q = await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        await q.bind(ex, routing_key="#")


def run_bare(opts: BareOptions, *, amqp_url: str | None = None, dsn: str | None = None) -> BareResult:
    """One run of the bare pipeline on the platform's Postgres and RabbitMQ, cleaned up afterwards."""
    settings = CommonSettings()
    amqp_url = amqp_url or settings.amqp_url
    dsn = dsn or scratch_dsn()
    prefix = f"bench.bare.{os.getpid()}."
    exchange, queue = prefix + "events", prefix + "sink"
    messages = sum(
        (min(opts.batch, opts.events - b) + opts.per_message - 1) // opts.per_message
        for b in range(0, opts.events, opts.batch)
    )

    async def prepare() -> None:
        await recreate_database(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(SCHEMA)
        finally:
            await conn.close()
        await _topology(amqp_url, exchange, queue)

    asyncio.run(prepare())
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    consumer = ctx.Process(
        target=_consumer_process, args=(dsn, amqp_url, queue, messages, opts.prefetch, send), daemon=True
    )
    try:
        consumer.start()
        send.close()
        # The clock starts once the consumer is listening (a spawned interpreter takes a second).
        if not receive.poll(60) or receive.recv() != "ready":
            raise RuntimeError("the bare consumer did not start")
        t0 = time.time()
        started = event_loop.run(_produce(dsn, amqp_url, exchange, opts))
        if not receive.poll(opts.timeout):
            raise TimeoutError(f"the bare consumer did not apply {messages:,} messages within {opts.timeout:.0f} s")
        answer = receive.recv()
        if isinstance(answer, str):
            raise RuntimeError(f"the bare consumer failed: {answer}")
    finally:
        if consumer.is_alive():
            consumer.kill()
        consumer.join(5)
        asyncio.run(_topology(amqp_url, exchange, queue, delete=True))
        asyncio.run(drop_database(dsn))
    last_commit: dict[int, float] = {}
    for batch, at in answer:
        last_commit[batch] = max(at, last_commit.get(batch, 0.0))
    latencies = sorted((last_commit[b] - started[b]) * 1000 for b in started if b in last_commit)
    seconds = max(last_commit.values()) - t0
    return BareResult(
        events=opts.events,
        messages=len(answer),
        seconds=seconds,
        events_per_s=opts.events / seconds,
        batch_p50_ms=percentile(latencies, 50),
        batch_p99_ms=percentile(latencies, 99),
    )


HEADER = ["events", "messages", "seconds", "events/s", "batch p50 ms", "batch p99 ms"]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="./sqi bench bare", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    d = BareOptions()
    p.add_argument("--events", type=int, default=d.events, help=f"events in all (default {d.events:,})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"events per batch (default {d.batch:,})")
    p.add_argument("--per-message", type=int, default=d.per_message, help=f"events per message ({d.per_message})")
    p.add_argument("--producers", type=int, default=d.producers, help=f"batches in flight ({d.producers})")
    p.add_argument("--prefetch", type=int, default=d.prefetch, help=f"consumer prefetch ({d.prefetch})")
    p.add_argument("--runs", type=int, default=1, help="repeat, to see the noise (default 1)")
    p.add_argument("--json", action="store_true", help="also print one JSON line per run")
    args = p.parse_args(argv)
    opts = BareOptions(args.events, args.batch, args.per_message, args.producers, args.prefetch)
    results = []
    for i in range(args.runs):
        say(f"bench bare: run {i + 1}/{args.runs}, {opts.events:,} events…")
        results.append(run_bare(opts))
    print_table(
        f"bare pipeline: batches of {opts.batch:,} → COPY → publish {opts.per_message}-event messages "
        f"(confirms, quorum queue) → consume (1 transaction/message, COPY); {opts.producers} batches in flight",
        HEADER,
        [r.as_row() for r in results],
    )
    if args.json:
        for r in results:
            print(orjson.dumps({"bench": "bare", **asdict(r), "options": asdict(opts)}).decode())
    return 0
