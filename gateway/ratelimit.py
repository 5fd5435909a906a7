"""Per-client-address limits on citizen writes (a sliding one-minute window).

In memory, per gateway replica: with N replicas a client gets at most N × the limit. The
ingress should pin clients to a replica (session affinity) or the limit should be divided.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000
    ) -> None:
        self._limit = per_minute
        self._clock = clock
        self._max_clients = max_clients
        self._hits: dict[str, deque[float]] = {}

    def allow(self, client: str) -> tuple[bool, int]:
        """(allowed, seconds until the next write is allowed)."""
        now = self._clock()
        hits = self._hits.setdefault(client, deque())
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if len(hits) >= self._limit:
            return False, max(1, int(hits[0] + 60 - now) + 1)
        hits.append(now)
        if len(self._hits) > self._max_clients:
            self._forget_idle(now)
        return True, 0

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, h in self._hits.items() if not h or h[-1] <= now - 60]:
            del self._hits[client]
