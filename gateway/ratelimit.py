"""Per-client limits on citizen writes (a sliding one-minute window), in bounded memory.

In memory, per gateway replica: with N replicas a client gets at most N × the limit. The
ingress should pin clients to a replica (session affinity) or the limit should be divided.

Clients are counted by :func:`gateway.clients.limit_key` (an IPv6 client by its /64, so rotating
addresses within it gains nothing). At most ``max_clients`` clients are remembered. A client
leaves the table once a minute has passed since its last write, so the table holds only the
clients that wrote within the last minute. When it is full of such clients a NEW client is
refused (``crowded``) until one ages out — never is a remembered one evicted: eviction would let
whoever can bring enough fresh addresses reset the count of any client, its own included, and
write without limit (ratings guessing codes, petitions against a unit). Refusing keeps the
limit exact; what a flood of addresses costs is availability for new clients, for at most a
minute after it stops, and the clients already counted keep their normal allowance.
"""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

WINDOW_S = 60.0


class Verdict(NamedTuple):
    allowed: bool
    retry_after: int  # seconds until a write may succeed (0 when allowed)
    crowded: bool = False  # refused because the table is full, not for this client's writes


class RateLimiter:
    def __init__(
        self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000
    ) -> None:
        self._limit = per_minute
        self._clock = clock
        self._max_clients = max_clients
        # Client → the times of its writes in the window, oldest first (an array of doubles: a
        # tenth of a deque's memory). Ordered by last write, least recent first, so the clients
        # gone idle are always at the front.
        self._hits: OrderedDict[str, array[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def allow(self, client: str) -> Verdict:
        now = self._clock()
        self._forget_idle(now)
        hits = self._hits.get(client)
        if hits is None:
            if len(self._hits) >= self._max_clients:
                return Verdict(False, self._seconds_until(next(iter(self._hits.values()))[-1], now), crowded=True)
            hits = self._hits[client] = array("d")
        while hits and hits[0] <= now - WINDOW_S:
            hits.pop(0)  # at most `per_minute` entries: cheap
        if len(hits) >= self._limit:
            return Verdict(False, self._seconds_until(hits[0], now))
        hits.append(now)
        self._hits.move_to_end(client)
        return Verdict(True, 0)

    def _forget_idle(self, now: float) -> None:
        # Amortised O(1) per write: each client is dropped once, from the front.
        while self._hits:
            client, hits = next(iter(self._hits.items()))
            if hits and hits[-1] > now - WINDOW_S:
                return
            del self._hits[client]

    @staticmethod
    def _seconds_until(oldest: float, now: float) -> int:
        return max(1, int(oldest + WINDOW_S - now) + 1)
