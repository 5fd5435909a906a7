"""The production broker permissions let each process do its work, and nothing of another's.

Real RabbitMQ. The test creates a private vhost and, for every ``Permission`` of the rendered
production overlay, a user with exactly those configure / write / read patterns (as the
messaging-topology operator would), then acts as each one the way SQI's code does: the migration
declares every consumer's topology; each service's worker declares its subscriptions, consumes,
parks, relays to its own exchange and collects a replay on a server-named queue; KEDA reads a
queue's depth; the gateway only connects. And it checks the refusals: a service cannot declare,
read or bind another service's queues, nor publish on another service's exchange.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import quote

import aio_pika
import aiormq
import pytest

from shared.messaging.topology import declare_exchange, declare_subscription
from sqi_cli.migrate import subscriptions
from tests.unit.k8s.conftest import K8S, render

pytestmark = pytest.mark.integration
VHOST = f"sqi-permissions-{os.getpid()}"
ENV = {**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"}


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], env=ENV, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, str]]:
    """Permission name (sqi-scoring, …) -> an AMQP URL for a user with exactly its patterns."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot create users on the local broker")
    docs = render(K8S / "overlays" / "production")
    tags = {u["metadata"]["name"]: u["spec"].get("tags", []) for u in docs if u["kind"] == "User"}
    created: list[str] = []
    urls = {}
    try:
        rabbitmqctl("add_vhost", VHOST)
        for p in (d for d in docs if d["kind"] == "Permission"):
            name = p["spec"]["userReference"]["name"]
            # Hex: a password starting with "-" would be read as an option by rabbitmqctl.
            user, password = f"{name}-{os.getpid()}", secrets.token_hex(16)
            perms = p["spec"]["permissions"]
            rabbitmqctl("add_user", user, password)
            created.append(user)
            rabbitmqctl("set_user_tags", user, *tags[name])
            rabbitmqctl("set_permissions", "-p", VHOST, user, perms["configure"], perms["write"], perms["read"])
            urls[name] = f"amqp://{user}:{password}@127.0.0.1:5672/{quote(VHOST, safe='')}"
        yield urls
    finally:
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", VHOST], env=ENV, capture_output=True, timeout=60, check=False
        )
        for user in created:
            rabbitmqctl("delete_user", user)


async def as_user(url: str, action) -> None:  # type: ignore[no-untyped-def]
    connection = await aio_pika.connect(url)
    try:
        await action(await connection.channel())
    finally:
        await connection.close()


def refused(url: str, action) -> bool:  # type: ignore[no-untyped-def]
    try:
        asyncio.run(as_user(url, action))
    except aiormq.exceptions.ChannelAccessRefused:
        return True
    return False


def test_every_process_can_do_its_work_and_no_other(users: dict[str, str]) -> None:
    subs = list(subscriptions())

    async def migrate(channel) -> None:  # type: ignore[no-untyped-def]
        for sub in subs:
            await declare_subscription(channel, sub, prefix="")

    asyncio.run(as_user(users["sqi-migrate"], migrate))

    for service in ("ingest", "scoring", "feedback"):
        own = [s for s in subs if s.queue.startswith(f"{service}.")]

        async def work(channel, own=own, service=service) -> None:  # type: ignore[no-untyped-def]
            for sub in own:  # what Consumer.start does, then a delivery, a parking, a relay
                queue = await declare_subscription(channel, sub, prefix="")
                await queue.get(fail=False)
                await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=f"{sub.queue}.parking")
                await channel.declare_queue(f"{sub.queue}.parking", passive=True)
            exchange = await declare_exchange(channel, f"{service}.events")
            await exchange.publish(aio_pika.Message(b"{}"), routing_key=f"{service}.something.v1")
            # `sqi recompute` collects a replay on a server-named exclusive queue bound to ingest.events.
            replay = await channel.declare_queue(exclusive=True, auto_delete=True)
            await replay.bind(await declare_exchange(channel, "ingest.events"), routing_key="replay.x")

        asyncio.run(as_user(users[f"sqi-{service}"], work))

    scoring, feedback = users["sqi-scoring"], users["sqi-feedback"]

    async def declare_feedback_queue(channel) -> None:  # type: ignore[no-untyped-def]
        (sub,) = [s for s in subs if s.queue == "feedback.dossier-units"]
        await declare_subscription(channel, sub, prefix="")

    async def read_feedback_queue(channel) -> None:  # type: ignore[no-untyped-def]
        queue = await channel.declare_queue("feedback.dossier-units", passive=True)
        await queue.get(fail=False)

    async def publish_as_ingest(channel) -> None:  # type: ignore[no-untyped-def]
        exchange = await channel.get_exchange("ingest.events", ensure=False)
        await exchange.publish(aio_pika.Message(b"{}"), routing_key="ingest.dossier-events.v1")
        await channel.declare_queue("scoring.probe", durable=False, auto_delete=True)  # forces a round trip

    assert refused(scoring, declare_feedback_queue), "scoring could declare feedback's queue"
    assert refused(scoring, read_feedback_queue), "scoring could read feedback's queue"
    assert refused(feedback, publish_as_ingest), "feedback could publish as ingest"

    async def read_depth(channel) -> None:  # type: ignore[no-untyped-def]
        raw = await channel.get_underlay_channel()
        await raw.queue_declare("scoring.dossier-events", passive=True)

    asyncio.run(as_user(users["sqi-keda"], read_depth))
    assert refused(users["sqi-keda"], publish_as_ingest), "KEDA could publish"

    asyncio.run(as_user(users["sqi-gateway"], lambda channel: asyncio.sleep(0)))
    assert refused(users["sqi-gateway"], declare_feedback_queue), "the gateway could declare queues"
