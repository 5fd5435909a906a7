"""A worker's long-lived jobs (relay, replays, refresher) survive their own failures.

Found by the chaos run: after a PostgreSQL restart the outbox relay's task died on its first
database error while the process lived on, so accepted events never left the outbox.
"""

from __future__ import annotations

import asyncio

from shared.metrics import WORKER_TASK_RESTARTS
from shared.worker import supervise


def restarts(task: str) -> float:
    return WORKER_TASK_RESTARTS.labels(service="test", task=task)._value.get()


async def test_a_failing_job_is_restarted_until_it_runs() -> None:
    stop = asyncio.Event()
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise ConnectionError("the database restarted")
        await stop.wait()  # healthy from the third run on, until the worker stops

    task = asyncio.create_task(supervise("flaky", flaky, stop=stop, service="test", first_backoff_s=0.01))
    async with asyncio.timeout(10):
        while len(runs) < 3:
            await asyncio.sleep(0.01)
    assert not task.done()
    stop.set()
    async with asyncio.timeout(10):
        await task
    assert len(runs) == 3
    assert restarts("flaky") == 2


async def test_a_job_that_returns_early_is_restarted_and_one_that_stops_is_not() -> None:
    stop = asyncio.Event()
    runs: list[int] = []

    async def returns_early() -> None:
        runs.append(1)
        if len(runs) == 2:
            stop.set()  # the worker stops during the second run: no third one

    async with asyncio.timeout(10):
        await supervise("early", returns_early, stop=stop, service="test", first_backoff_s=0.01)
    assert len(runs) == 2
    assert restarts("early") == 1
