"""A consumer process for the exactly-once test: records each event's effect in a counter table."""

from __future__ import annotations

import sys

import orjson
from sqlalchemy import text

from shared import event_loop
from shared.db import create_engine, service_metadata, session_factory
from shared.messaging.tables import inbox_table, outbox_table
from shared.messaging.topology import IncomingMessage, Subscription
from shared.settings import CommonSettings
from shared.unit_of_work import ServiceDatabase, UnitOfWork
from shared.worker import WorkerParts, run_worker

SCHEMA = "bus_test"
metadata = service_metadata(SCHEMA)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


class BusTestDatabase(ServiceDatabase):
    OUTBOX = outbox
    EXCHANGE = "bus-test.events"


async def count_effects(message: IncomingMessage, uow: UnitOfWork) -> None:
    for event in orjson.loads(message.body)["events"]:
        await uow.session.execute(
            text(
                "INSERT INTO bus_test.effect (event_key, applied) VALUES (:k, 1) "
                "ON CONFLICT (event_key) DO UPDATE SET applied = bus_test.effect.applied + 1"
            ),
            {"k": f"{event['source']}:{event['event_id']}"},
        )


SUBSCRIPTION = Subscription(
    queue="bus-test.effects",
    exchange="ingest.events",
    routing_keys=["ingest.dossier-events.v1"],
    handler=count_effects,
    retry_delay_ms=200,
)


def main() -> None:
    settings = CommonSettings()
    if len(sys.argv) > 1:
        settings = settings.model_copy(update={"consumer_prefetch": int(sys.argv[1])})
    engine = create_engine(settings, application_name="bus-test-consumer")
    parts = WorkerParts(
        settings=settings,
        database=BusTestDatabase(engine, session_factory(engine)),
        inbox=inbox,
        subscriptions=[SUBSCRIPTION],
    )
    event_loop.run(run_worker(parts))


if __name__ == "__main__":
    main()
