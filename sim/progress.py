"""A one-line progress report on stderr: events, events/s, ETA (no dependency needed)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, label: str = "events", stream: TextIO | None = None) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.start = self._last = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            self.render(now)

    def render(self, now: float | None = None, end: str = "\r") -> None:
        elapsed = max(1e-9, (now or time.monotonic()) - self.start)
        rate = self.done / elapsed
        line = f"{self.done:,} {self.label}  {rate:,.0f}/s"
        if self.total:
            left = max(0, self.total - self.done)
            eta = left / rate if rate > 0 else 0.0
            line += f"  {100 * self.done / self.total:5.1f}%  ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        self.stream.write(line.ljust(60) + end)
        self.stream.flush()

    def close(self) -> None:
        self.render(end="\n")
