"""``python -m services.scoring.recompute_cli``: replay the raw log, rebuild, compare with live scores.

Declares its queue (bound to ``ingest.events`` with ``replay.scoring-recompute``) before asking
the gateway for the replay, waits for ``ReplayFinished`` and every batch it announces, rebuilds
with the live code path and prints each difference per (period, unit, indicator).
Exit status: 0 when none, 1 when any, 2 when the replay could not be obtained.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence

import aio_pika
import httpx
import orjson
from sqlalchemy import text

from services.scoring.application.caches import sync_references
from services.scoring.application.recompute import Difference, live_periods, recompute_and_compare
from services.scoring.bootstrap import Scoring, bootstrap
from shared import event_loop
from shared.contracts import RawEvent, ReplayBatch, ReplayFinished, replay_routing_key

CONSUMER = "scoring-recompute"
INGEST_EXCHANGE = "ingest.events"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sqi recompute", description=__doc__)
    p.add_argument("--gateway", default=os.environ.get("SQI_GATEWAY_URL", "http://127.0.0.1:8000"))
    p.add_argument("--period", help="one period (default: every period present in live scores)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the replay")
    return p.parse_args(argv)


async def collect_replay(amqp_url: str, prefix: str, gateway: str, token: str, wait_s: float) -> list[RawEvent]:
    """Bind a private queue, request the replay, return every replayed event."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(prefix + INGEST_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=replay_routing_key(CONSUMER))
        async with httpx.AsyncClient(timeout=60) as client:
            r = await client.post(
                f"{gateway.rstrip('/')}/api/v1/replays",
                json={"consumer": CONSUMER},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
            replay_id = r.json()["replay_id"]
        batches: dict[int, list[RawEvent]] = {}
        finished: ReplayFinished | None = None
        progress = Progress()
        async with asyncio.timeout(wait_s), queue.iterator() as it:
            async for message in it:
                async with message.process():
                    body = orjson.loads(message.body)
                    if body.get("replay_id") != replay_id:
                        continue
                    if "batch_no" in body:
                        b = ReplayBatch.model_validate(body)
                        batches[b.batch_no] = b.events
                        progress.show(batches, finished)
                    else:
                        finished = ReplayFinished.model_validate(body)
                if finished is not None and len(batches) >= finished.batches:
                    break
        progress.show(batches, finished, final=True)
    return [e for n in sorted(batches) for e in batches[n]]


class Progress:
    """One line on stderr while the raw log streams in: rewritten in place on a terminal,
    a plain line every few seconds otherwise (logs, CI)."""

    def __init__(self, every_s: float = 2.0) -> None:
        self.every_s = every_s
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def show(self, batches: dict[int, list[RawEvent]], finished: ReplayFinished | None, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else self.every_s):
            return
        self.last = now
        events = sum(len(b) for b in batches.values())
        of = f" of {finished.events:,}" if finished is not None else ""
        line = f"recompute: replay {events:,}{of} events ({len(batches):,} batches)"
        end = "\n" if final or not self.tty else ""
        print(("\r" if self.tty else "") + line, end=end, file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> int:
    app = bootstrap()
    try:
        return await _recompute(app, args)
    finally:
        await app.dispose()


async def _recompute(app: Scoring, args: argparse.Namespace) -> int:
    token = os.environ.get("SQI_ADMIN_TOKEN", "")
    if not token:
        print("SQI_ADMIN_TOKEN is required (an admin bearer token for the gateway)", file=sys.stderr)
        return 2
    try:
        events = await collect_replay(app.settings.amqp_url, app.settings.bus_prefix, args.gateway, token, args.timeout)
    except (httpx.HTTPError, TimeoutError) as exc:
        print(f"replay failed: {exc}", file=sys.stderr)
        return 2
    periods, diffs = await compare_with_live(app, events, args.period)
    for d in diffs:
        print(d)
    print(f"{len(events)} events, {len(periods)} period(s), {len(diffs)} difference(s)", file=sys.stderr)
    return 1 if diffs else 0


# The tool judges the replayed log in memory and only compares: a read-only transaction makes sure
# it stores nothing. So it opens no judging step (application.judging.judge_due_in_step): a
# catalogue or calendar change committed while it runs can at worst make one run print a
# difference the next run does not find; nothing stored is left judged with an older copy.
_READ_ONLY = text("SET TRANSACTION READ ONLY")


async def compare_with_live(
    app: Scoring, events: list[RawEvent], period: str | None
) -> tuple[list[str], list[Difference]]:
    """Rebuild ``period`` (None: every period with live scores) from ``events`` and compare it
    with the live scores, in one read-only transaction; returns the periods and the differences."""
    async with app.sessions() as session:
        await session.execute(_READ_ONLY)  # the transaction's first statement
        # The same methodology versions and declared days as the worker scores with.
        await sync_references(app, session)
        periods = [period] if period else await live_periods(session)
        print(f"recompute: judging {len(events):,} events into {len(periods)} period(s)…", file=sys.stderr)
        diffs = await recompute_and_compare(
            session,
            events=events,
            periods=periods,
            methodologies=list(app.methodologies.values()),
            calendar=app.calendar,
        )
    return periods, diffs


def main(argv: Sequence[str] | None = None) -> int:
    return event_loop.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
