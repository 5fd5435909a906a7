"""What ``bench live`` and ``bench chaos`` observe from outside, through the public API only.

* :class:`MarkerProbe` — freshness (độ tươi của điểm): marker dossiers sent into a unit of their
  own and the time until the unit's score counts them. A marker is a fresh dossier received a
  minute ago and completed now (two events, one request); a completed dossier is *handled* in
  the period, and the breakdown's ``dossiers`` field is the number handled. The marker unit
  (``P01.BENCH`` under Hà Nội's office) gets nothing but markers, so its count rises by exactly
  one per marker: marker *k* is in the score once ``GET /api/v1/scores/P01.BENCH?period=`` shows
  ``dossiers ≥ base + k``, in the month (Vietnam time) the marker is completed in — each month
  has its own base, so a phase may cross a month's end (one did in session 11, and its markers,
  counted in the month before, were never seen). Freshness = that answer's arrival − the marker
  request's HTTP 200, so it includes up to one poll interval and one read: it errs on the slow
  side.
* :class:`Readers` — N concurrent readers, each looping on one kind of request, latencies per kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import httpx
import orjson

from bench.common import percentile

VN = timezone(timedelta(hours=7))
MARKER_UNIT = "P01.BENCH"
MARKER_PARENT = "P01"
MARKER_SOURCE = "bench-marker"
MARKER_PROCEDURE = "T.DKT.02"  # a local office's procedure of the reference catalogue

#: The reads of issue 9 and issue 8 (path templates; ``{period}`` is filled in).
READS: dict[str, str] = {
    "ranking": "/api/v1/scores?level=province&period={period}",
    "breakdown": "/api/v1/scores/P01?period={period}",
    "dossiers": "/api/v1/scores/P01/indicators/2.1/dossiers?period={period}",
    "public": "/",
}
DEFAULT_MIX = "ranking=8,breakdown=6,dossiers=2,public=4"


def period_now() -> str:
    """The running month in Vietnam time (the period the readers read)."""
    return datetime.now(VN).strftime("%Y-%m")


def parse_mix(text: str) -> dict[str, int]:
    """``ranking=8,breakdown=6`` → readers per kind; unknown kinds are an error."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, n = part.partition("=")
        if kind not in READS or not n.isdigit():
            raise ValueError(f"bad reader mix {part!r}: KIND=N with KIND one of {', '.join(READS)}")
        mix[kind] = int(n)
    return mix


def marker_lines(run: str, k: int, now: datetime) -> bytes:
    """Marker ``k`` of a run: received a minute ago, completed now (NDJSON, two events)."""
    dossier = f"BENCH-{run}-{k:06d}"
    received = now - timedelta(minutes=1)
    common = {"source": MARKER_SOURCE}
    events = [
        {
            **common,
            "event_id": f"{dossier}:received",
            "type": "dossier.received",
            "occurred_at": received.astimezone(VN).isoformat(timespec="seconds"),
            "data": {
                "dossier_id": dossier,
                "procedure_code": MARKER_PROCEDURE,
                "unit_code": MARKER_UNIT,
                "due_at": (now + timedelta(days=3)).astimezone(VN).isoformat(timespec="seconds"),
                "channel": "online",
                "online_level": "full",
                "applicant_type": "citizen",
                "officer_id": "bench-officer",
            },
        },
        {
            **common,
            "event_id": f"{dossier}:completed",
            "type": "dossier.completed",
            "occurred_at": now.astimezone(VN).isoformat(timespec="seconds"),
            "data": {
                "dossier_id": dossier,
                "outcome": "approved",
                "result_digitized": True,
                "officer_id": "bench-officer",
            },
        },
    ]
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


@dataclass
class Pending:
    target: int
    accepted_at: float
    period: str = ""  # the month the marker is handled in (Vietnam time of its completion)


def resolve(pending: list[Pending], count: int, seen_at: float) -> tuple[list[float], list[Pending]]:
    """Freshness of every marker the observed ``count`` covers; the markers still waiting."""
    done = [seen_at - p.accepted_at for p in pending if p.target <= count]
    return done, [p for p in pending if p.target > count]


async def ensure_marker_unit(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    """The marker unit and an integrator key for it; answers the key."""
    body = {
        "name": "Đơn vị đo kiểm (bench)",
        "level": "local",
        "parent_code": MARKER_PARENT,
        "valid_from": "2025-07-01",
    }
    r = await client.put(f"/api/v1/units/{MARKER_UNIT}", json=body, headers=admin)
    if r.status_code >= 300:
        raise RuntimeError(f"PUT /api/v1/units/{MARKER_UNIT}: {r.status_code} {r.text[:300]}")
    r = await client.post("/api/v1/keys", json={"source": MARKER_SOURCE, "units": [MARKER_UNIT]}, headers=admin)
    if r.status_code >= 300:
        raise RuntimeError(f"POST /api/v1/keys: {r.status_code} {r.text[:300]}")
    return str(r.json()["key"])


class MarkerProbe:
    """Sends a marker every ``interval`` s and polls the marker unit's score every ``poll`` s."""

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        key: str,
        staff: dict[str, str],
        *,
        interval: float = 1.0,
        poll: float = 0.1,
    ) -> None:
        """``client``: set (``probe.client = …``) before use, inside the event loop that uses it."""
        self._client, self.key, self.staff = client, key, staff
        self.interval, self.poll = interval, poll
        self.run = datetime.now(UTC).strftime("%H%M%S")
        self.clock = lambda: datetime.now(UTC)  # a marker's completion time (tests set it)
        self.sent = 0
        # Per month (Vietnam time): the marker unit's count before the probe's first marker in it,
        # and the probe's markers accepted in it. A phase may cross the month's end: a marker is
        # handled in the month it is completed in, and counted there.
        self.base: dict[str, int] = {}
        self.accepted_in: dict[str, int] = {}
        self.pending: list[Pending] = []
        self.freshness: list[float] = []
        self.send_errors = 0
        self.accepted = 0

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "set probe.client first"
        return self._client

    @client.setter
    def client(self, value: httpx.AsyncClient) -> None:
        self._client = value

    async def count(self, period: str) -> int:
        r = await self.client.get(f"/api/v1/scores/{MARKER_UNIT}?period={period}", headers=self.staff)
        if r.status_code == 404:
            return 0  # no score row yet: nothing handled
        r.raise_for_status()
        return int(r.json()["dossiers"])

    async def send_one(self, now: datetime) -> float | None:
        """One marker completed at ``now``; the monotonic time of its 200, or None when it was not
        accepted."""
        self.sent += 1
        body = marker_lines(self.run, self.sent, now)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/x-ndjson"}
        try:
            r = await self.client.post("/api/v1/events", content=body, headers=headers)
        except httpx.HTTPError:
            self.send_errors += 1
            return None
        at = time.monotonic()
        if r.status_code != 200 or r.json().get("accepted") != 2:
            self.send_errors += 1
            return None
        return at

    async def send_marker(self) -> bool:
        now = self.clock()
        period = now.astimezone(VN).strftime("%Y-%m")
        if period not in self.base:
            self.base[period] = await self.count(period)
        at = await self.send_one(now)
        if at is None:
            return False
        self.accepted += 1
        self.accepted_in[period] = self.accepted_in.get(period, 0) + 1
        self.pending.append(Pending(self.base[period] + self.accepted_in[period], at, period))
        return True

    async def _sender(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            tick = time.monotonic()
            await self.send_marker()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - tick)))

    async def _poller(self, stop: asyncio.Event) -> None:
        while not stop.is_set() or self.pending:
            for period in sorted({p.period for p in self.pending}):
                try:
                    count = await self.count(period)
                except httpx.HTTPError:
                    count = -1
                mine = [p for p in self.pending if p.period == period]
                done, waiting = resolve(mine, count, time.monotonic())
                self.pending = [p for p in self.pending if p.period != period] + waiting
                self.freshness += done
            if stop.is_set() and not self.pending:
                break
            await asyncio.sleep(self.poll)

    async def measure(self, seconds: float, settle: float) -> None:
        """Markers for ``seconds``, then up to ``settle`` seconds for the last ones to show."""
        stop = asyncio.Event()
        poller = asyncio.create_task(self._poller(stop))
        await self._sender(seconds)
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(poller, settle)

    async def wait_visible(self, deadline_s: float) -> float | None:
        """Send one marker and wait for it (bounded); its freshness in seconds or None."""
        before = len(self.freshness)
        if not await self.send_marker():
            return None
        stop = asyncio.Event()
        stop.set()
        try:
            await asyncio.wait_for(self._poller(stop), deadline_s)
        except TimeoutError:
            self.pending = []  # targets are cumulative: dropping a marker shifts nothing
            return None
        return self.freshness[-1] if len(self.freshness) > before else None

    def take(self) -> dict[str, float | int]:
        """The figures since the last call; markers still unseen are counted and forgotten."""
        f = sorted(self.freshness)
        out = {
            "markers": len(f) + len(self.pending),
            "seen": len(f),
            "unseen": len(self.pending),
            "send_errors": self.send_errors,
            "p50_s": percentile(f, 50),
            "p95_s": percentile(f, 95),
            "p99_s": percentile(f, 99),
            "max_s": f[-1] if f else float("nan"),
        }
        self.freshness, self.pending, self.send_errors = [], [], 0
        return out


@dataclass
class ReadStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int | dict[str, int]]:
        lat = sorted(self.latencies_ms)
        return {
            "requests": len(lat),
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "errors": dict(self.errors),
        }


class Readers:
    """``mix[kind]`` readers per kind, each looping on its request until stopped.

    A reader starts a request every ``pace_s`` seconds (or as soon as the last one answered, when
    it took longer): a person at a dashboard, not a load generator. ``pace_s=0`` makes them
    closed-loop with no pause, which measures how many reads the platform can serve at all
    (latency is then 20 / throughput, whatever the request costs).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        staff: dict[str, str],
        mix: dict[str, int],
        period: str,
        *,
        pace_s: float = 0.0,
    ) -> None:
        self.client, self.staff, self.mix, self.period = client, staff, mix, period
        self.pace_s = pace_s
        self.stats: dict[str, ReadStats] = {kind: ReadStats() for kind in mix}

    async def _reader(self, kind: str, stop: asyncio.Event) -> None:
        path = READS[kind].format(period=self.period)
        headers = {} if kind == "public" else self.staff
        stats = self.stats[kind]
        # Readers start spread over one pace, not all in the same instant.
        await asyncio.sleep(random.uniform(0, self.pace_s))
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                r = await self.client.get(path, headers=headers)
                status = str(r.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            ms = (time.perf_counter() - t0) * 1000
            if status == "200":
                stats.latencies_ms.append(ms)
            else:
                stats.errors[status] = stats.errors.get(status, 0) + 1
                await asyncio.sleep(0.2)  # an error answers fast: do not spin on it
            await asyncio.sleep(max(0.0, self.pace_s - (time.perf_counter() - t0)))

    async def run(self, seconds: float) -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(self._reader(k, stop)) for k, n in self.mix.items() for _ in range(n)]
        await asyncio.sleep(seconds)
        stop.set()
        # A reader inside a slow request finishes it (bounded by the client's timeout).
        await asyncio.gather(*tasks)


def summarise_reads(readers: Readers, kinds: Sequence[str] = tuple(READS)) -> dict[str, dict[str, object]]:
    return {k: dict(readers.stats[k].summary()) for k in kinds if k in readers.stats}
