"""Talks to SQI through the gateway only: creates the world, sends events, posts feedback.

Resending is safe (``(source, event_id)`` is idempotent), so every 5xx, 429 or connection error is
retried with exponential backoff; a 413 splits the batch. 401/403 stop the run: a wrong key will
not fix itself.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from sim.progress import Progress
from sim.world import World

BATCH_MAX = 5000
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

    async def send_feedback(self, world: World, items: list[dict[str, Any]]) -> None:
        """Ratings, petitions and reactions, in time order (one at a time: citizens are few)."""
        fb = self.stats.feedback
        petitions: dict[str, tuple[str, str]] = {}
        for item in sorted(items, key=lambda i: i["t"]):
            kind, body = item["kind"], dict(item["body"])
            if kind == "rating":
                code = await self.rating_code(world, body["dossier_id"])
                if code is None:
                    fb["rating_no_code"] = fb.get("rating_no_code", 0) + 1
                    continue
                body["rating_code"] = code
                r = await self._request(
                    "POST", "/api/v1/ratings", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
                )
            elif kind == "petition":
                r = await self._request(
                    "POST",
                    "/api/v1/petitions",
                    content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                if r.status_code == 201:
                    ans = r.json()
                    petitions[item["ref"]] = (str(ans["petition_id"]), str(ans.get("access_code", "")))
            else:
                pid = petitions.get(item["ref"])
                if pid is None:
                    continue
                body["access_code"] = pid[1]
                r = await self._request(
                    "POST",
                    f"/api/v1/petitions/{pid[0]}/reaction",
                    content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
            key = f"{kind}_{r.status_code}"
            fb[key] = fb.get(key, 0) + 1
