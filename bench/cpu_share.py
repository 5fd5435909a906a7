"""Where a benchmark phase's CPU went, per process, read from Linux ``/proc``.

``bench live`` reports freshness and reads; without this table, *why* a phase missed its
target took a separate hand-run sampler. Every process of the machine is grouped by what it is:
the platform's own processes by name (``scoring-worker``, ``gateway``, …), every PostgreSQL
backend together, RabbitMQ, the simulator, this benchmark process (readers and probe), and the
rest. A process that starts during the phase counts from zero; one that ends is missed (the
pools keep their backends, so this is rare and errs low), and one that has ended but is not
reaped yet keeps the group the first snapshot gave it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from bench.common import cpu_seconds

Snapshot = tuple[float, dict[int, tuple[str, float]]]  # (monotonic s, pid → (group, CPU s))


def _command(pid: int) -> tuple[str, str]:
    """(comm, command line) of a process; empty when it is gone."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "", ""
    return comm, argv


def group_of(pid: int, named: Mapping[int, str]) -> str:
    if pid in named:
        return named[pid]
    if pid == os.getpid():
        return "bench (readers, probe)"
    comm, argv = _command(pid)
    if comm == "postgres" or argv.startswith("postgres"):
        return "PostgreSQL"
    if comm.startswith("beam") or "rabbit" in argv:
        return "RabbitMQ"
    if "sim.cli" in argv:
        return "simulator"
    return "other"


def snapshot(named: Mapping[int, str]) -> Snapshot:
    """CPU seconds so far of every process, grouped (``named``: pid → group for the platform's own)."""
    out: dict[int, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            pid = int(entry.name)
            out[pid] = (group_of(pid, named), cpu_seconds(pid))
    return time.monotonic(), out


def cores_between(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """Cores used per group between two snapshots (CPU seconds / wall seconds), busiest first."""
    (t0, was), (t1, now) = before, after
    wall = max(t1 - t0, 1e-9)
    used: dict[str, float] = {}
    for pid, (group, cpu) in now.items():
        group_then, start = was.get(pid, (group, 0.0))
        # A process that has exited but is not reaped yet (the simulator, awaited just before
        # the last snapshot) has no command line left: it is what the first snapshot saw.
        if group == "other":
            group = group_then
        used[group] = used.get(group, 0.0) + max(0.0, cpu - start) / wall
    return dict(sorted(used.items(), key=lambda kv: -kv[1]))
