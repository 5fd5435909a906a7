"""Live activity (hoạt động trực tiếp): about R events a second, as a dossier system sends them.

Three streams are merged in time: the continuation of the back-filled history (the same seed's
recent days regenerated, keeping only what happens after the start), new dossiers received now,
and their own later events. A few per cent of lines are sent twice (duplicates) or held back for
up to a minute (late, out of order), as real feeds do.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sim.clock import DAY, OFFSET
from sim.generate import Anomalies, Config, Generator
from sim.send import Sender
from sim.world import World

LOOKBACK_DAYS = 20


@dataclass
class LiveOptions:
    rate: float
    duration: float | None = None
    duplicate_share: float = 0.03
    late_share: float = 0.02
    scale: float = 1.0
    feedback: bool = False
    # The history's anomaly settings: the continuation must make the same draws and bumps.
    anomalies: Anomalies = field(default_factory=Anomalies)
    catalogue: bool = True  # send the procedure catalogue first (see Config.catalogue)


def _now_local() -> int:
    return int(time.time()) + OFFSET


class LiveStream:
    """Decides, tick by tick, which lines go out; no I/O of its own (testable)."""

    def __init__(self, world: World, seed: int, opts: LiveOptions, now: int, lookback_days: int = LOOKBACK_DAYS):
        self.opts = opts
        self.rng = random.Random(f"live:{seed}:{now}")
        self.heap: list[tuple[int, int, str, bytes]] = []
        self._seq = 0
        horizon = now + 120 * DAY

        def push(t: int, source: str, line: bytes) -> None:
            if t > now:
                self._seq += 1
                heapq.heappush(self.heap, (t, self._seq, source, line))

        # The history's own future: the same seed and day plans as the back-fill.
        hist = Generator(
            world,
            Config(
                seed=seed,
                t_start=now - lookback_days * DAY,
                t_end=horizon,
                t_receive_end=now,
                scale=opts.scale,
                feedback=False,
                anomalies=opts.anomalies,
            ),
        )
        hist.sink = push
        # The catalogue's first version first: on a fresh platform dossiers need their procedures.
        self.catalogue = [(src, line) for src, line in hist.catalogue()] if opts.catalogue else []
        for day in range(hist.cfg.t_start // DAY, now // DAY + 1):
            hist.generate_day(day)
        self.gen = Generator(
            world,
            Config(
                seed=seed,
                t_start=now,
                t_end=horizon,
                scale=opts.scale,
                feedback=opts.feedback,
                anomalies=Anomalies.none(),
                tag=f"L{now:x}",
            ),
        )
        self.gen.sink = push
        self.recent: deque[tuple[str, bytes]] = deque(maxlen=2000)
        self.held: list[tuple[float, int, str, bytes]] = []
        self.spawned = 0

    def tick(self, now: int, budget: int, wall: float) -> list[tuple[str, bytes]]:
        """The lines to send at local time ``now`` (about ``budget`` of them)."""
        out: list[tuple[str, bytes]] = []
        while self.held and self.held[0][0] <= wall:
            _, _, src, line = heapq.heappop(self.held)
            out.append((src, line))
        spawned_here = 0
        while len(out) < budget:
            if self.heap and self.heap[0][0] <= now:
                _, seq, src, line = heapq.heappop(self.heap)
                if self.rng.random() < self.opts.late_share:
                    heapq.heappush(self.held, (wall + self.rng.uniform(5, 60), seq, src, line))
                    continue
                out.append((src, line))
                self.recent.append((src, line))
                if self.rng.random() < self.opts.duplicate_share and self.recent:
                    out.append(self.recent[self.rng.randrange(len(self.recent))])
            elif spawned_here < budget:
                self.spawned += 1
                spawned_here += 1
                self.gen.spawn(self.rng, now, self.spawned)
            else:
                break
        return out


async def run_live(
    world: World,
    seed: int,
    opts: LiveOptions,
    *,
    sender: Sender | None = None,
    out: BinaryIO | None = None,
    now_fn: Callable[[], int] = _now_local,
    log: Callable[[str], None] = print,
) -> int:
    """Stream until ``opts.duration`` elapses (or cancellation). Returns the lines sent."""
    stream = LiveStream(world, seed, opts, now_fn())
    if out is not None:
        out.write(b"".join(line for _, line in stream.catalogue))
    elif sender is not None:
        await sender.send_lines(stream.catalogue)
    start = time.monotonic()
    sent, carry, last_log = 0, 0.0, start
    held_feedback: list[dict[str, Any]] = []
    try:
        while opts.duration is None or time.monotonic() - start < opts.duration:
            tick_start = time.monotonic()
            carry += opts.rate
            budget = int(carry)
            carry -= budget
            lines = stream.tick(now_fn(), budget, tick_start)
            if lines:
                if out is not None:
                    out.write(b"".join(line for _, line in lines))
                    out.flush()
                elif sender is not None:
                    await sender.send_lines(lines)
                    if opts.feedback:
                        t_now = now_fn()
                        due = held_feedback + [i for i in stream.gen.feedback if i["t"] <= t_now]
                        if due:
                            stream.gen.feedback = [i for i in stream.gen.feedback if i["t"] > t_now]
                            # Citizen writes beyond the per-minute budget wait for a later tick.
                            held_feedback = await sender.send_feedback(world, due, block=False)
                sent += len(lines)
            if tick_start - last_log >= 10:
                last_log = tick_start
                log(f"live: {sent:,} events in {tick_start - start:,.0f} s")
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick_start)))
    except asyncio.CancelledError:
        pass
    return sent
