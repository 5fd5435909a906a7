"""``./sqi bench pg-activity``: where PostgreSQL's time goes while something else runs.

Samples ``pg_stat_activity`` every ``--interval`` seconds for ``--seconds`` and prints, as the
average number of sessions (0.29 = some session was in it 29 % of the time):

- each statement, active in any way;
- each statement on the CPU (no wait event);
- each (wait event, statement) pair: lock waits, WAL syncs, vacuum's throttle;
- each wait event.

A sampling profiler of the database, not a benchmark. Run it beside one, e.g. during the
2,000 events/s phase of ``./sqi bench live``. Session 9 found two things with it: the consumer
waiting for judging's row locks, and asyncpg's type introspection from pools that churned
(docs/decisions.md, session 9). Every database of the server is sampled, except this tool's own
session.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter

import asyncpg

from shared.settings import CommonSettings
from sqi_cli.scratch import admin_dsn

_ACTIVE = """
SELECT query, wait_event_type, wait_event FROM pg_stat_activity
WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


def _statement(query: str, width: int) -> str:
    return re.sub(r"\s+", " ", query).strip()[:width]


async def sample(dsn: str, seconds: float, interval: float, width: int) -> tuple[int, dict[str, Counter[str]]]:
    """How many samples were taken, and per view the samples each key was seen in."""
    views: dict[str, Counter[str]] = {name: Counter() for name in ("active", "cpu", "waits", "events")}
    conn = await asyncpg.connect(dsn)
    n = 0
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            n += 1
            for query, wait_type, wait in await conn.fetch(_ACTIVE):
                q = _statement(query, width)
                views["active"][q] += 1
                if wait_type is None:
                    views["cpu"][q] += 1
                else:
                    views["waits"][f"{wait_type}:{wait:<18} {q[:70]}"] += 1
                    views["events"][f"{wait_type}:{wait}"] += 1
            await asyncio.sleep(interval)
    finally:
        await conn.close()
    return n, views


def report(n: int, views: dict[str, Counter[str]], top: int) -> str:
    titles = {
        "active": "statements, active (sessions on average)",
        "cpu": "statements on the CPU (no wait event)",
        "waits": "waits, by event and statement",
        "events": "wait events",
    }
    lines = [f"pg-activity: {n} samples"]
    for name, title in titles.items():
        lines += ["", title]
        lines += [f"  {count / max(n, 1):6.3f}  {key}" for key, count in views[name].most_common(top)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="./sqi bench pg-activity", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=40.0, help="how long to sample (default 40)")
    p.add_argument("--interval", type=float, default=0.01, help="seconds between samples (default 0.01)")
    p.add_argument("--top", type=int, default=25, help="lines per table (default 25)")
    p.add_argument("--width", type=int, default=110, help="characters of each statement shown (default 110)")
    p.add_argument("--dsn", help="a PostgreSQL DSN (default: SQI_DATABASE_URL's server, database postgres)")
    a = p.parse_args(argv)
    dsn = a.dsn or admin_dsn(CommonSettings().database_url)
    n, views = asyncio.run(sample(dsn, a.seconds, a.interval, a.width))
    print(report(n, views, a.top))
    return 0
