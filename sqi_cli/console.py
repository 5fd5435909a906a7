"""``./sqi up``'s console: the addresses, one progress line, warnings and errors — nothing else.

Every process writes its full (JSON) log to a file of its own under the run's log directory;
a follower thread reads those files and brings to the console only what a person must see:
records at WARNING or above, anything that is not JSON from a platform process (a traceback,
a crash), and the simulator's progress, which becomes the one progress line (rewritten in
place on a terminal, a plain line every ``plain_every_s`` seconds otherwise).
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

SHOWN_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
SIMULATOR = "simulator"


class Console:
    """Notes above, and one status line below that is rewritten (TTY) or repeated (not a TTY)."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, plain_every_s: float = 30.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.plain_every_s = plain_every_s
        self._status = ""
        self._last_plain: float | None = None
        self._lock = threading.Lock()

    def _width(self) -> int:
        return max(40, shutil.get_terminal_size((100, 20)).columns - 1)

    def note(self, line: str) -> None:
        with self._lock:
            if self.tty and self._status:
                self.stream.write("\r" + " " * self._width() + "\r")
            self.stream.write(line.rstrip() + "\n")
            if self.tty and self._status:
                self.stream.write(self._status[: self._width()])
            self.stream.flush()

    def status(self, text: str) -> None:
        with self._lock:
            if self.tty:
                self._status = text
                self.stream.write("\r" + text[: self._width()].ljust(self._width()))
                self.stream.flush()
            elif text != self._status and (
                self._last_plain is None or time.monotonic() - self._last_plain >= self.plain_every_s
            ):
                self._status = text
                self._last_plain = time.monotonic()
                self.stream.write(text + "\n")
                self.stream.flush()

    def end_status(self) -> None:
        with self._lock:
            if self.tty and self._status:
                self.stream.write("\n")
                self.stream.flush()
            self._status = ""


def worth_showing(name: str, line: str) -> str | None:
    """The console form of one log line, or None when it belongs in the file only."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError:
            return f"{name}: {text[:300]}"
        level = str(record.get("level", "")).upper()
        if level not in SHOWN_LEVELS:
            return None
        return f"{name}: {level} {record.get('message', '')}"[:300]
    if name == SIMULATOR:
        return None  # its progress and summaries make the status line
    return f"{name}: {text[:300]}"


class LogFollower(threading.Thread):
    """Follows ``<name>.log`` files in a directory; notes what matters, keeps the sim's status."""

    def __init__(self, log_dir: Path, console: Console, *, poll_s: float = 0.5) -> None:
        super().__init__(name="sqi-log-follower", daemon=True)
        self.log_dir = log_dir
        self.console = console
        self.poll_s = poll_s
        self.simulator_status = ""
        self.shown = 0
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, str] = {}
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)
        self.poll()

    def run(self) -> None:
        while not self._stopping.wait(self.poll_s):
            self.poll()

    def poll(self) -> None:
        for path in sorted(self.log_dir.glob("*.log")):
            name = path.stem
            with path.open("rb") as f:
                f.seek(self._offsets.get(path, 0))
                data = f.read()
                self._offsets[path] = f.tell()
            if not data:
                continue
            text = self._partial.pop(path, "") + data.decode("utf-8", errors="replace")
            # The simulator rewrites its progress with "\r"; every other process ends lines with "\n".
            chunks = text.replace("\r", "\n").split("\n")
            if not text.endswith(("\n", "\r")):
                self._partial[path] = chunks.pop()
            for chunk in chunks:
                if name == SIMULATOR and chunk.strip() and not chunk.lstrip().startswith("{"):
                    self.simulator_status = chunk.strip()
                shown = worth_showing(name, chunk)
                if shown is not None:
                    self.shown += 1
                    self.console.note(shown)
