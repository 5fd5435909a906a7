"""The check every service's copy of the unit tree must pass: a record older than the one held
(a ``UnitsChanged`` retried after a later one) changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Table, select

from shared.contracts import UnitRecord, UnitsChanged
from shared.messaging.consumer import Consumer
from shared.messaging.topology import IncomingMessage, Subscription
from shared.unit_of_work import UnitOfWork


def units_subscription(subscriptions: Sequence[Subscription]) -> Subscription:
    return next(s for s in subscriptions if UnitsChanged.routing_key in s.routing_keys)


def _message(message_id: str, name: str, revision: int) -> IncomingMessage:
    record = UnitRecord(code="P01.REV", name=name, level="local", parent_code="P01", revision=revision)
    body = UnitsChanged(units=[record]).model_dump_json().encode()
    return IncomingMessage(message_id, UnitsChanged.routing_key, body)


async def an_older_revision_never_wins(
    uow_factory: Callable[[], UnitOfWork], inbox: Table, subscriptions: Sequence[Subscription], unit: Table
) -> None:
    consumer = Consumer(uow_factory=uow_factory, inbox=inbox)
    subscription = units_subscription(subscriptions)

    async def held() -> tuple[str, int]:
        async with uow_factory() as uow:
            query = select(unit.c.name, unit.c.revision).where(unit.c.code == "P01.REV")
            row = (await uow.session.execute(query)).one()
        return row.name, row.revision

    assert await consumer.apply(subscription, _message("rev-1", "Tên thứ nhất", 1))
    assert await consumer.apply(subscription, _message("rev-3", "Tên thứ ba", 3))
    assert await held() == ("Tên thứ ba", 3)
    # Revision 2, redelivered after 3 (a retry): nothing changes.
    assert await consumer.apply(subscription, _message("rev-2", "Tên thứ hai", 2))
    assert await held() == ("Tên thứ ba", 3)
    # The same revision again (a replay of the tree) is applied, an idempotent write.
    assert await consumer.apply(subscription, _message("rev-3-again", "Tên thứ ba", 3))
    assert await held() == ("Tên thứ ba", 3)
