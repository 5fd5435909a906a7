"""Talks to SQI through the gateway only: creates the world, sends events, posts feedback.

Feedback: most ratings are imported in bulk with the province source's key
(``POST /api/v1/ratings/import``); petitions, reactions and a few ratings go through the citizen
endpoints, paced to stay within the gateway's per-address limit.

Resending is safe (``(source, event_id)`` is idempotent), so every 5xx, 429 or connection error is
retried with exponential backoff; a 413 splits the batch. 401/403 stop the run: a wrong key will
not fix itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from sim.clock import Clock
from sim.feedback import IMPORT_ORIGIN
from sim.progress import Progress
from sim.world import World

BATCH_MAX = 5000
IMPORT_MAX = 1000  # ratings per import request (the feedback service takes up to 5,000)
#: Citizen writes a minute: below the gateway's 10 per address, leaving room for a person
#: using the rating form from the same machine.
CITIZEN_PER_MINUTE = 6
VALID_FROM = "2025-07-01"


class SendError(RuntimeError):
    """The platform refused the credential or the request for good."""


@dataclass
class Stats:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    first_rejections: list[dict[str, Any]] = field(default_factory=list)
    rating_codes: dict[str, str] = field(default_factory=dict)
    feedback: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        fb = ", ".join(f"{k} {v}" for k, v in sorted(self.feedback.items()))
        return (
            f"sent {self.sent:,} events: accepted {self.accepted:,}, duplicates {self.duplicates:,}, "
            f"rejected {self.rejected:,}, retries {self.retries}" + (f"; feedback: {fb}" if fb else "")
        )


class Sender:
    """Async client of the public API with bounded concurrency and retries."""

    def __init__(
        self,
        gateway: str,
        *,
        admin_token: str | None = None,
        keys: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        concurrency: int = 4,
        batch_size: int = BATCH_MAX,
        max_attempts: int = 8,
        backoff: float = 0.5,
        progress: Progress | None = None,
        citizen_per_minute: int = CITIZEN_PER_MINUTE,
    ) -> None:
        self.base = gateway.rstrip("/")
        self.admin_token = admin_token
        self.keys: dict[str, str] = dict(keys or {})
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0))
        self.concurrency = concurrency
        self.batch_size = min(batch_size, BATCH_MAX)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.progress = progress
        self.stats = Stats()
        self.citizen_per_minute = citizen_per_minute
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.fmt = Clock().fmt
        self._citizen_times: deque[float] = deque()
        self._petitions: dict[str, tuple[str, str]] = {}  # ref -> (petition id, access code)

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- transport ------------------------------------------------------------------------------
    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                r = await self.client.request(method, self.base + path, **kw)
            except httpx.TransportError:
                if attempt == self.max_attempts:
                    raise
            else:
                if r.status_code < 500 and r.status_code != 429:
                    return r
                if attempt == self.max_attempts:
                    return r
                if r.status_code == 429:
                    ra = r.headers.get("retry-after", "")
                    delay = max(delay, float(ra)) if ra.replace(".", "", 1).isdigit() else delay
            self.stats.retries += 1
            await asyncio.sleep(delay * (0.75 + random.random() / 2))
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def _admin(self) -> dict[str, str]:
        if not self.admin_token:
            raise SendError("an admin token is needed (--admin-token or SQI_ADMIN_TOKEN)")
        return {"Authorization": f"Bearer {self.admin_token}"}

    # -- the world ------------------------------------------------------------------------------
    async def ensure_world(self, world: World) -> None:
        """PUT every local office; create one integrator key per source still without one."""
        sem = asyncio.Semaphore(self.concurrency * 2)

        async def put(code: str, body: dict[str, Any]) -> None:
            async with sem:
                r = await self._request("PUT", f"/api/v1/units/{code}", json=body, headers=self._admin())
            if r.status_code >= 300:
                raise SendError(f"PUT /api/v1/units/{code}: {r.status_code} {r.text[:300]}")

        await asyncio.gather(
            *(
                put(o.code, {"name": o.name, "level": "local", "parent_code": o.parent_code, "valid_from": VALID_FROM})
                for o in world.local_offices()
            )
        )
        for source, units in sorted(world.sources.items()):
            if source in self.keys:
                continue
            r = await self._request(
                "POST", "/api/v1/keys", json={"source": source, "units": units}, headers=self._admin()
            )
            if r.status_code >= 300:
                raise SendError(f"POST /api/v1/keys ({source}): {r.status_code} {r.text[:300]}")
            self.keys[source] = r.json()["key"]

    # -- events ---------------------------------------------------------------------------------
    async def post_batch(self, source: str, lines: list[bytes]) -> None:
        body = b"".join(lines)
        headers = {"Authorization": f"Bearer {self.keys[source]}", "Content-Type": "application/x-ndjson"}
        r = await self._request("POST", "/api/v1/events", content=body, headers=headers)
        if r.status_code == 413 and len(lines) > 1:
            half = len(lines) // 2
            await self.post_batch(source, lines[:half])
            await self.post_batch(source, lines[half:])
            return
        if r.status_code in (401, 403):
            raise SendError(f"{source}: credential refused ({r.status_code}): {r.text[:300]}")
        if r.status_code not in (200, 422):
            raise SendError(f"{source}: POST /api/v1/events answered {r.status_code}: {r.text[:300]}")
        ans = r.json()
        s = self.stats
        s.sent += len(lines)
        s.accepted += int(ans.get("accepted", 0))
        s.duplicates += int(ans.get("duplicates", 0))
        rejected = ans.get("rejected") or []
        s.rejected += len(rejected)
        for rej in rejected[: max(0, 10 - len(s.first_rejections))]:
            s.first_rejections.append({"source": source, **rej})
        s.rating_codes.update(ans.get("rating_codes") or {})
        if self.progress:
            self.progress.advance(len(lines))

    async def send_lines(self, lines: Iterable[tuple[str, bytes]]) -> Stats:
        """Send (source, line) pairs (lines end in a newline) as NDJSON batches per source, concurrently."""
        queue: asyncio.Queue[tuple[str, list[bytes]] | None] = asyncio.Queue(maxsize=self.concurrency * 2)
        errors: list[Exception] = []

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                try:
                    await self.post_batch(*item)
                except Exception as e:  # keep draining so the producer never blocks forever
                    errors.append(e)

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        buffers: dict[str, list[bytes]] = {}
        try:
            for source, line in lines:
                buf = buffers.setdefault(source, [])
                buf.append(line)
                if len(buf) >= self.batch_size:
                    await queue.put((source, buf))
                    buffers[source] = []
                    if errors:
                        break
            if not errors:
                for source, buf in buffers.items():
                    if buf:
                        await queue.put((source, buf))
        finally:
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        if errors:
            raise errors[0]
        return self.stats

    # -- feedback -------------------------------------------------------------------------------
    async def rating_code(self, world: World, dossier_id: str) -> str | None:
        code = self.stats.rating_codes.get(dossier_id)
        if code:
            return code
        office = world.office(dossier_id.split("-", 1)[0])
        r = await self._request(
            "GET",
            f"/api/v1/dossiers/{dossier_id}/rating-code",
            headers={"Authorization": f"Bearer {self.keys[office.source]}"},
        )
        if r.status_code != 200:
            return None
        code = r.json().get("rating_code")
        if code:
            self.stats.rating_codes[dossier_id] = code
        return code

    def _count(self, key: str, n: int = 1) -> None:
        if n:
            self.stats.feedback[key] = self.stats.feedback.get(key, 0) + n

    async def citizen_slot(self, *, block: bool) -> bool:
        """Room for one more citizen write within ``citizen_per_minute`` (a sliding minute)?

        The gateway allows 10 citizen writes a minute per client address and the simulator is
        one address (shared with whoever browses the platform from the same machine): it keeps
        below its own, lower budget. ``block``: wait for room; else answer False at once.
        """
        while True:
            now = self.clock()
            while self._citizen_times and self._citizen_times[0] <= now - 60:
                self._citizen_times.popleft()
            if len(self._citizen_times) < self.citizen_per_minute:
                self._citizen_times.append(now)
                return True
            if not block:
                return False
            await self.sleep(self._citizen_times[0] + 60 - now + 0.05)

    async def import_ratings(self, source: str, records: list[dict[str, Any]]) -> None:
        """Ratings collected elsewhere, imported with the province source's key (no per-address limit)."""
        for i in range(0, len(records), IMPORT_MAX):
            chunk = records[i : i + IMPORT_MAX]
            r = await self._request(
                "POST",
                "/api/v1/ratings/import",
                content=orjson.dumps(chunk),
                headers={"Authorization": f"Bearer {self.keys[source]}", "Content-Type": "application/json"},
            )
            if r.status_code in (401, 403):
                raise SendError(f"{source}: rating import refused ({r.status_code}): {r.text[:300]}")
            if r.status_code not in (200, 422):
                self._count(f"import_{r.status_code}", len(chunk))
                continue
            ans = r.json()
            # Held ratings (dossier not yet known to feedback) are applied when it arrives.
            self._count("import_accepted", int(ans.get("accepted", 0)) + int(ans.get("held", 0)))
            self._count("import_duplicates", int(ans.get("duplicates", 0)))
            self._count("import_rejected", len(ans.get("rejected") or []))

    async def send_feedback(
        self, world: World, items: list[dict[str, Any]], *, block: bool = True
    ) -> list[dict[str, Any]]:
        """Ratings, petitions and reactions; answers the citizen items left for later.

        Imported ratings go in bulk per source; citizen items (petitions, reactions, a few
        ratings) one at a time in time order, within the citizen budget: ``block`` waits for
        room (history), otherwise the rest is answered back to be sent on a later call (live).
        The rating burst is sent as is, once each, to show the limit holding (429s expected).
        """
        imports: dict[str, list[dict[str, Any]]] = {}
        citizen: list[dict[str, Any]] = []
        burst: list[dict[str, Any]] = []
        for item in sorted(items, key=lambda i: i["t"]):
            if item["kind"] == "rating" and item.get("via") == "import":
                source = item.get("source") or world.office(item["body"]["dossier_id"].split("-", 1)[0]).source
                imports.setdefault(source, []).append(
                    {
                        "dossier_id": item["body"]["dossier_id"],
                        "level": item["body"]["level"],
                        "criteria": item["body"].get("criteria", {}),
                        "rated_at": self.fmt(item["t"]),
                        "origin": IMPORT_ORIGIN,
                    }
                )
            elif item.get("burst"):
                burst.append(item)
            else:
                citizen.append(item)
        for source, records in sorted(imports.items()):
            await self.import_ratings(source, records)
        for i, item in enumerate(citizen):
            if not await self.citizen_slot(block=block):
                return citizen[i:]
            await self._citizen_item(world, item)
        for item in burst:
            await self._burst_rating(world, item)
        return []

    async def _citizen_item(self, world: World, item: dict[str, Any]) -> None:
        kind, body = item["kind"], dict(item["body"])
        json_headers = {"Content-Type": "application/json"}
        if kind == "rating":
            code = await self.rating_code(world, body["dossier_id"])
            if code is None:
                self._count("rating_no_code")
                return
            body["rating_code"] = code
            r = await self._request("POST", "/api/v1/ratings", content=orjson.dumps(body), headers=json_headers)
        elif kind == "petition":
            r = await self._request("POST", "/api/v1/petitions", content=orjson.dumps(body), headers=json_headers)
            if r.status_code == 201:
                ans = r.json()
                self._petitions[item["ref"]] = (str(ans["petition_id"]), str(ans.get("access_code", "")))
        else:
            pid = self._petitions.get(item["ref"])
            if pid is None:
                self._count("reaction_no_petition")
                return
            body["access_code"] = pid[1]
            r = await self._request(
                "POST", f"/api/v1/petitions/{pid[0]}/reaction", content=orjson.dumps(body), headers=json_headers
            )
        self._count(f"{kind}_{r.status_code}")

    async def _burst_rating(self, world: World, item: dict[str, Any]) -> None:
        body = dict(item["body"])
        code = await self.rating_code(world, body["dossier_id"])
        if code is None:
            self._count("burst_no_code")
            return
        body["rating_code"] = code
        try:
            r = await self.client.post(
                self.base + "/api/v1/ratings", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
            )
        except httpx.TransportError:
            self._count("burst_error")
            return
        self._count(f"burst_{r.status_code}")
