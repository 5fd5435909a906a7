"""The event loop every SQI process runs on: uvloop, as uvicorn already gives the HTTP apps.

The workers (consumers, outbox relays, the refresher) and the command-line jobs used to run on
asyncio's own loop. Their time goes to many small socket reads and writes (aio-pika's frames and
confirms, asyncpg's round trips), which uvloop does in C: the outbox relay published 18–20 %
more rows a second on 10–11 % less CPU (``./sqi bench relay``, docs/performance.md, session 14).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a process's main coroutine to completion on a new uvloop event loop."""
    return uvloop.run(main)
