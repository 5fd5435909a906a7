"""The sender against an httpx.MockTransport: world set-up, batches, retries, rating codes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from sim.generate import Anomalies, Generator
from sim.send import Sender, SendError
from sim.world import World

from .conftest import run


class FakeGateway:
    def __init__(self, fail_first: int = 0, reject_every: int = 0, too_large_over: int = 0) -> None:
        self.calls: Counter[str] = Counter()
        self.batches: list[tuple[str, int]] = []
        self.seen: set[tuple[str, str]] = set()
        self.fail_first = fail_first
        self.reject_every = reject_every
        self.too_large_over = too_large_over
        self.ratings: list[dict[str, Any]] = []
        self.imported: list[tuple[str, dict[str, Any]]] = []
        self.petitions = 0
        self.citizen_at: list[float] = []
        self.now: Callable[[], float] = lambda: 0.0

    def __call__(self, req: httpx.Request) -> httpx.Response:
        path = req.url.path
        self.calls[f"{req.method} {path.split('/')[3]}"] += 1
        if req.method == "PUT" and path.startswith("/api/v1/units/"):
            assert req.headers["authorization"] == "Bearer ADMIN"
            body = orjson.loads(req.content)
            assert body["level"] == "local" and body["parent_code"] and body["valid_from"] and body["name"]
            return httpx.Response(200, json=body)
        if path == "/api/v1/keys":
            body = orjson.loads(req.content)
            return httpx.Response(201, json={"key": f"sqi_{body['source']}", "key_id": 1, **body})
        if path == "/api/v1/events":
            if self.fail_first:
                self.fail_first -= 1
                return httpx.Response(503, json={"error": {"code": "unavailable"}})
            assert req.headers["content-type"] == "application/x-ndjson"
            source = req.headers["authorization"].removeprefix("Bearer sqi_")
            lines = req.content.splitlines()
            if self.too_large_over and len(lines) > self.too_large_over:
                return httpx.Response(413, json={"error": {"code": "too_large"}})
            self.batches.append((source, len(lines)))
            acc = dup = 0
            rejected, codes = [], {}
            for i, line in enumerate(lines):
                ev = orjson.loads(line)
                assert ev["source"] == source
                if self.reject_every and i % self.reject_every == 0:
                    rejected.append(
                        {"index": i, "event_id": ev["event_id"], "errors": [{"field": "data", "reason": "test"}]}
                    )
                elif (source, ev["event_id"]) in self.seen:
                    dup += 1
                else:
                    self.seen.add((source, ev["event_id"]))
                    acc += 1
                    if ev["type"] == "dossier.received":
                        codes[ev["data"]["dossier_id"]] = "CODE" + ev["data"]["dossier_id"][-4:]
            status = 200 if acc or dup else 422
            return httpx.Response(
                status, json={"accepted": acc, "duplicates": dup, "rejected": rejected, "rating_codes": codes}
            )
        if path == "/api/v1/ratings/import":
            assert req.headers["authorization"].startswith("Bearer sqi_tms-")
            records = orjson.loads(req.content)
            assert all(set(r) == {"dossier_id", "level", "criteria", "rated_at", "origin"} for r in records)
            self.imported += [(req.headers["authorization"].removeprefix("Bearer sqi_"), r) for r in records]
            return httpx.Response(200, json={"accepted": len(records), "duplicates": 0, "rejected": []})
        if path in ("/api/v1/ratings", "/api/v1/petitions") or path.endswith("/reaction"):
            self.citizen_at.append(self.now())
        if path == "/api/v1/ratings":
            self.ratings.append(orjson.loads(req.content))
            return httpx.Response(201, json={})
        if path == "/api/v1/petitions":
            self.petitions += 1
            return httpx.Response(201, json={"petition_id": f"p{self.petitions}", "access_code": "AC"})
        if path.endswith("/reaction"):
            return httpx.Response(200, json={})
        if path.endswith("/rating-code"):
            return httpx.Response(200, json={"dossier_id": path.split("/")[4], "rating_code": "FETCHED"})
        return httpx.Response(404)


class VirtualTime:
    """A clock that only sleeping moves: pacing is checked without waiting for real minutes."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


def _sender(gw: FakeGateway, **kw: Any) -> Sender:
    client = httpx.AsyncClient(transport=httpx.MockTransport(gw))
    s = Sender("http://gw", admin_token="ADMIN", client=client, backoff=0.001, **kw)
    vt = VirtualTime()
    s.clock, s.sleep, gw.now = vt, vt.sleep, vt
    return s


@pytest.fixture(scope="module")
def small() -> tuple[Generator, list[tuple[str, bytes]]]:
    gen, _ = run(seed=2, scale=0.01, feedback=True, anomalies=Anomalies(rating_burst=5))
    gen2, _ = run(seed=2, scale=0.01, feedback=True, anomalies=Anomalies(rating_burst=5))
    return gen, list(gen2.lines())


async def test_ensure_world_creates_offices_and_one_key_per_source(world: World) -> None:
    gw = FakeGateway()
    s = _sender(gw)
    await s.ensure_world(world)
    assert gw.calls["PUT units"] == len(world.local_offices())
    assert gw.calls["POST keys"] == len(world.sources) and set(s.keys) == set(world.sources)


async def test_ensure_world_needs_an_admin_token(world: World) -> None:
    s = Sender("http://gw", client=httpx.AsyncClient(transport=httpx.MockTransport(FakeGateway())))
    with pytest.raises(SendError):
        await s.ensure_world(world)


async def test_batches_per_source_retries_and_rating_codes(small: tuple[Generator, list], world: World) -> None:
    gen, lines = small
    gw = FakeGateway(fail_first=2)
    s = _sender(gw, batch_size=700, concurrency=3)
    await s.ensure_world(world)
    stats = await s.send_lines(lines)
    assert stats.retries == 2
    assert stats.sent == stats.accepted == len(lines)
    assert max(n for _, n in gw.batches) <= 700
    received = sum(1 for _, x in lines if b'"dossier.received"' in x)
    assert len(stats.rating_codes) == received - len(gen.key.anomalies["reopened_dossiers"])
    again = await s.send_lines(lines)
    assert again.duplicates == len(lines)
    assert await s.send_feedback(world, gen.feedback) == []
    ratings = [i for i in gen.feedback if i["kind"] == "rating"]
    via_import = [i for i in ratings if i["via"] == "import"]
    citizen = [i for i in ratings if i["via"] == "citizen" and not i.get("burst")]
    burst = [i for i in ratings if i.get("burst")]
    assert via_import and citizen and burst and len(via_import) > 10 * len(citizen)
    # Imported: every one, with its simulated time and under its province's source key.
    assert stats.feedback["import_accepted"] == len(via_import) == len(gw.imported)
    assert {r["dossier_id"] for _, r in gw.imported} == {i["body"]["dossier_id"] for i in via_import}
    assert all(src == world.office(r["dossier_id"].split("-", 1)[0]).source for src, r in gw.imported)
    assert all(r["origin"] == "national_portal" and r["rated_at"].endswith("+07:00") for _, r in gw.imported)
    assert stats.feedback["rating_201"] == len(citizen)
    assert stats.feedback["burst_201"] == len(burst)
    assert stats.feedback["petition_201"] == sum(1 for i in gen.feedback if i["kind"] == "petition")
    assert all(r["rating_code"].startswith("CODE") for r in gw.ratings)


async def test_citizen_writes_stay_within_the_budget_per_minute(small: tuple[Generator, list], world: World) -> None:
    gen, lines = small
    gw = FakeGateway()
    s = _sender(gw, citizen_per_minute=4)
    await s.ensure_world(world)
    await s.send_lines(lines)
    items = [i for i in gen.feedback if i["via"] == "citizen" and not i.get("burst")]
    assert len(items) > 8
    assert await s.send_feedback(world, items) == []
    times = gw.citizen_at
    assert len(times) == len(items)
    assert all(b - a >= 60 for a, b in zip(times, times[4:], strict=False)), "more than 4 in a minute"
    # Not blocking (live mode): what does not fit this minute is handed back, in order.
    live = _sender(gw, citizen_per_minute=4)
    live.stats.rating_codes = s.stats.rating_codes
    left = await live.send_feedback(world, items, block=False)
    assert len(left) == len(items) - 4 and left == sorted(items, key=lambda i: i["t"])[4:]


async def test_rejections_are_counted_and_413_splits(small: tuple[Generator, list], world: World) -> None:
    _, lines = small
    gw = FakeGateway(reject_every=50, too_large_over=300)
    s = _sender(gw, batch_size=1000)
    await s.ensure_world(world)
    stats = await s.send_lines(lines)
    assert stats.rejected > 0 and stats.accepted + stats.rejected == len(lines)
    assert len(stats.first_rejections) == 10 and stats.first_rejections[0]["errors"]
    assert max(n for _, n in gw.batches) <= 300


async def test_a_refused_key_stops_the_run(small: tuple[Generator, list]) -> None:
    _, lines = small

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "unauthorized"}})

    s = Sender(
        "http://gw",
        keys={src: "bad" for src, _ in lines},
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(SendError):
        await s.send_lines(lines)
