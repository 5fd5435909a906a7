"""A render process beside each API process: cached pages render there, not on the event loop.

A thread would not do: rendering holds the GIL, and the event loop would still wait for it
between its own steps. The API reads a page's rows (cheap, ``adapters.repository``), sends them
here with a function of ``api.render`` and gets bytes back; meanwhile its event loop keeps
answering every other request from the page cache. One process: renders are few (at most one per
page per half stale window, ``api.page_cache``) and the machine has few cores to share with the
worker. A process that dies (killed) is replaced on the next render.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from services.reporting.api import render

log = logging.getLogger(__name__)
T = TypeVar("T")


class RenderPool:
    def __init__(self, processes: int = 1) -> None:
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork would copy the API's event loop, threads and connections.
            self._pool = ProcessPoolExecutor(
                self._processes, mp_context=multiprocessing.get_context("spawn"), initializer=render.warm
            )
        return self._pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the render process (``fn`` and ``args`` must pickle)."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            return await loop.run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            log.warning("the render process died; starting another")
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            return await loop.run_in_executor(self._executor(), fn, *args)

    async def start(self) -> None:
        """Start the process now (it imports and compiles for a second or two), not on a reader's time."""
        await self.run(render.warm)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
