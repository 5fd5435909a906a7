"""The API's copies of small tables: loaded once inline, then reloaded in the background."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.application.table_copy import TableCopy


class Table:
    def __init__(self) -> None:
        self.rows = ["a"]
        self.loads = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def load(self, _session: AsyncSession) -> list[str]:
        self.loads += 1
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("database gone")
        return list(self.rows)


@asynccontextmanager
async def _session() -> AsyncIterator[Any]:
    yield None


SESSIONS = cast(async_sessionmaker[AsyncSession], _session)
SESSION = cast(AsyncSession, None)


async def _until(check: Any) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while not check():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.005)


async def test_a_stale_copy_answers_while_one_reload_runs() -> None:
    table = Table()
    copy = TableCopy(table.load, seconds=0.01)
    assert await copy.get(SESSION, SESSIONS) == ["a"] and table.loads == 1
    table.rows, table.gate = ["a", "b"], asyncio.Event()  # the next load is held
    await asyncio.sleep(0.02)
    answers = [await asyncio.wait_for(copy.get(SESSION, SESSIONS), 1) for _ in range(5)]
    assert answers == [["a"]] * 5 and table.loads == 2  # nobody waited; one reload started
    table.gate.set()
    await _until(lambda: copy.value == ["a", "b"])


async def test_a_failed_reload_keeps_the_copy() -> None:
    table = Table()
    copy = TableCopy(table.load, seconds=0.01)
    await copy.get(SESSION, SESSIONS)
    table.fail = True
    await asyncio.sleep(0.02)
    assert await copy.get(SESSION, SESSIONS) == ["a"]
    await _until(lambda: not copy.reloads.running)
    assert copy.value == ["a"] and table.loads == 2


async def test_while_changes_are_heard_the_copy_reloads_on_a_change_not_on_its_age() -> None:
    table = Table()
    hearing = True
    copy = TableCopy(table.load, seconds=0.01, heard_seconds=3600)
    copy.reloads.follow(lambda: hearing)
    await copy.get(SESSION, SESSIONS)
    await asyncio.sleep(0.02)
    for _ in range(3):
        await copy.get(SESSION, SESSIONS)
    assert table.loads == 1  # older than ``seconds``, but nothing was heard

    table.rows = ["a", "b"]
    copy.reloads.changed()
    assert await copy.get(SESSION, SESSIONS) == ["a"]  # answered from the copy in hand…
    await _until(lambda: copy.value == ["a", "b"])  # …while one reload brings the change
    assert table.loads == 2

    hearing = False  # the listener is down: back to reloading by age
    await asyncio.sleep(0.02)
    await copy.get(SESSION, SESSIONS)
    await _until(lambda: table.loads == 3 and not copy.reloads.running)


class SnapshotTable(Table):
    """Reads the rows when the load starts, as a transaction sees the table at its start."""

    async def load(self, _session: AsyncSession) -> list[str]:
        self.loads += 1
        rows = list(self.rows)
        await self.gate.wait()
        return rows


async def test_a_change_heard_during_a_reload_is_loaded_after_it() -> None:
    table = SnapshotTable()
    copy = TableCopy(table.load, seconds=3600, heard_seconds=3600)
    copy.reloads.follow(lambda: True)
    await copy.get(SESSION, SESSIONS)
    table.gate = asyncio.Event()  # the reload reads the table as it was, and is held
    copy.reloads.changed()
    await copy.get(SESSION, SESSIONS)
    await _until(lambda: table.loads == 2)
    table.rows = ["a", "b"]  # committed while that reload runs, and heard
    copy.reloads.changed()
    await copy.get(SESSION, SESSIONS)
    assert table.loads == 2  # never two reloads at once
    table.gate.set()
    await _until(lambda: not copy.reloads.running)
    assert copy.value == ["a"]
    await copy.get(SESSION, SESSIONS)  # the change heard meanwhile is still due
    await _until(lambda: copy.value == ["a", "b"])
    assert table.loads == 3


async def test_a_failed_reload_is_retried_by_age_even_while_changes_are_heard() -> None:
    table = Table()
    copy = TableCopy(table.load, seconds=0.01, heard_seconds=3600)
    copy.reloads.follow(lambda: True)
    await copy.get(SESSION, SESSIONS)
    table.fail = True
    copy.reloads.changed()
    await copy.get(SESSION, SESSIONS)
    await _until(lambda: table.loads == 2 and not copy.reloads.running)
    table.fail, table.rows = False, ["a", "b"]
    await asyncio.sleep(0.02)
    await copy.get(SESSION, SESSIONS)
    await _until(lambda: copy.value == ["a", "b"])
