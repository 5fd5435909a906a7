"""The one loop of a worker's periodic background job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def run_every(seconds: float, job: Callable[[], Awaitable[None]], *, stop: asyncio.Event, name: str) -> None:
    """Run ``job`` now, then every ``seconds`` until ``stop``. A failing round is logged (as
    ``name``) and the next round tries again: a background job never stops the consumers."""
    while not stop.is_set():
        try:
            await job()
        except Exception:
            log.exception("background job failed; will try again", extra={"job": name})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
