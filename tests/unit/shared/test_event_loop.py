"""The workers and command-line jobs run on uvloop, as uvicorn runs the HTTP apps."""

from __future__ import annotations

import asyncio

import uvloop

from shared import event_loop


async def _loop_and_answer() -> tuple[asyncio.AbstractEventLoop, int]:
    await asyncio.sleep(0)
    return asyncio.get_running_loop(), 42


def test_a_main_coroutine_runs_to_completion_on_uvloop() -> None:
    loop, answer = event_loop.run(_loop_and_answer())

    assert isinstance(loop, uvloop.Loop)
    assert answer == 42
    assert loop.is_closed()
