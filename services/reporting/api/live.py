"""One LISTEN connection per API process: the read model's versions, kept current, and their
fan-out to the dashboard's live clients (server-sent events).

The worker bumps a version in the transaction that changes the read model and NOTIFYs it after
the commit (``adapters.changes``). Here one asyncpg connection listens; the versions it hears key the page
cache, and each live client is woken. While the listener is down (start, database restart) a
version is one indexed read instead, so a page is never served from a stale version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.reporting.adapters.changes import CHANNEL, current_versions, parse_payload
from shared.listener import Listener

_VERSIONS = "SELECT scope, version FROM reporting.read_model_version"


class TooManyClients(Exception):
    """The process already serves its maximum of live clients."""


class Subscriber:
    """One live client: the scopes changed since it last looked (a set: bounded by design)."""

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self.closed = False
        self._wake = asyncio.Event()

    def push(self, scope: str) -> None:
        self.pending.add(scope)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def wait(self, within_s: float) -> set[str]:
        """The changed scopes, or an empty set after ``within_s`` seconds (or when closed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), within_s)
        self._wake.clear()
        out, self.pending = self.pending, set()
        return out


class ChangeFeed:
    def __init__(
        self,
        dsn: str,
        sessions: async_sessionmaker[AsyncSession],
        *,
        on_change: Callable[[str], None] = lambda scope: None,
        max_clients: int = 1000,
        check_s: float = 15.0,
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change
        self._max_clients = max_clients
        self._clients: set[Subscriber] = set()
        self.versions: dict[str, int] = {}
        self.closing = False
        self._listener = Listener(
            dsn,
            CHANNEL,
            self._on_notify,
            on_connect=partial(self._read_versions, only_newer=False),  # missed while not listening
            on_check=partial(self._read_versions, only_newer=True),  # also a notification lost
            check_s=check_s,
            name="reporting change listener",
        )

    @property
    def connected(self) -> bool:
        return self._listener.connected

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def full(self) -> bool:
        return self.closing or len(self._clients) >= self._max_clients

    # --- versions -------------------------------------------------------------------------

    async def version(self, *scopes: str) -> int:
        """The sum of the scopes' versions: what the listener heard, else one read. Each
        counter only grows, so the sum grows exactly when one of them does."""
        if not self.connected or any(s not in self.versions for s in scopes):
            async with self._sessions() as session:
                self._apply(await current_versions(session), only_newer=False)
        return sum(self.versions.get(s, 0) for s in scopes)

    def _apply(self, fresh: dict[str, int], *, only_newer: bool) -> None:
        for scope, version in fresh.items():
            known = self.versions.get(scope)
            if known == version or (only_newer and known is not None and version < known):
                continue
            self.versions[scope] = version
            if known is None:
                continue  # the first reading is no change
            self._on_change(scope)
            for client in list(self._clients):
                client.push(scope)

    def _on_notify(self, payload: str) -> None:
        parsed = parse_payload(payload)
        if parsed is not None:
            self._apply({parsed[0]: parsed[1]}, only_newer=True)

    async def _read_versions(self, conn: asyncpg.Connection, *, only_newer: bool) -> None:
        rows = await conn.fetch(_VERSIONS)
        self._apply({r["scope"]: int(r["version"]) for r in rows}, only_newer=only_newer)

    async def run(self) -> None:
        """Listen until cancelled (:class:`shared.listener.Listener`): pages read versions while it
        is not connected."""
        await self._listener.run()

    # --- live clients ---------------------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscriber]:
        if self.closing:
            raise TooManyClients("shutting down")
        if len(self._clients) >= self._max_clients:
            raise TooManyClients(f"at most {self._max_clients} live clients")
        client = Subscriber()
        self._clients.add(client)
        try:
            yield client
        finally:
            self._clients.discard(client)

    def close(self) -> None:
        """Shutting down: every live stream ends, so the server can drain its connections."""
        self.closing = True
        for client in list(self._clients):
            client.close()


async def close_on_server_exit(feed: ChangeFeed, poll_s: float = 0.5) -> None:
    """End the live streams as soon as uvicorn starts a graceful shutdown.

    uvicorn waits for every open response before it runs the lifespan shutdown, and an event
    stream never ends by itself: without this a SIGTERM would hang until the kill. uvicorn's
    SIGTERM handler is its server's bound ``handle_exit``; its ``should_exit`` turns true first.
    """
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    if server is None or not hasattr(server, "should_exit"):
        return  # not under uvicorn (tests): the lifespan shutdown closes the feed
    while not server.should_exit:  # noqa: ASYNC110 — a plain flag of uvicorn's, no event to await
        await asyncio.sleep(poll_s)
    feed.close()


async def event_stream(feed: ChangeFeed, *, heartbeat_s: float, min_interval_s: float) -> AsyncIterator[str]:
    """A live client's server-sent events.

    ``ready`` once (the versions now), then ``change`` with the scopes that changed — at most one
    every ``min_interval_s`` (changes in between are merged) — and a comment every
    ``heartbeat_s`` so proxies keep the connection and a dead client is noticed. Ends when the
    feed closes (shutdown); the client leaving cancels it, and ``subscribe`` forgets it.
    """
    try:
        with feed.subscribe() as client:
            yield f"retry: 5000\nevent: ready\ndata: {json.dumps(feed.versions)}\n\n"
            last = float("-inf")
            while not client.closed:
                scopes = await client.wait(heartbeat_s)
                if client.closed:
                    break
                if not scopes:
                    yield ": keep-alive\n\n"
                    continue
                while (left := last + min_interval_s - time.monotonic()) > 0 and not client.closed:
                    scopes |= await client.wait(left)
                last = time.monotonic()
                data = {"scopes": sorted(scopes), "versions": {s: feed.versions.get(s) for s in sorted(scopes)}}
                yield f"event: change\ndata: {json.dumps(data)}\n\n"
    except TooManyClients:
        return  # the browser retries later, or falls back to polling
