"""Citizens' feedback through the gateway: the write limit, and how ratings and petitions move G5.

The e2e platform is shared by every e2e test and the gateway limits citizen writes per client
address. Every test here therefore speaks from its own loopback address (the whole 127.0.0.0/8
reaches the gateway listening on 127.0.0.1; the client binds a fresh source address), so no other
test's writes count against it and its writes count against no one else. Nothing in the platform
needs configuring for that: the gateway sees a different ``request.client.host``.

The score test creates its own province and local office, so no other test's dossiers, ratings or
petitions reach its numbers, and uses the running month: the methodology judges a running period
"now", and a rating or petition counts for a period only if it was given before the period's
judging instant — a citizen's rating posted today can move only today's period.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from shared.calendar import VN_TZ
from shared.settings import CommonSettings

pytestmark = pytest.mark.e2e

#: Source addresses no other test uses: 127.<pid-derived>.<n>.1, one per client.
_ADDRESSES = (f"127.{100 + os.getpid() % 100}.{n}.1" for n in itertools.count(10))
SCORE_TIMEOUT_S = 45.0


def wait_until_feedback_knows(dossier_ids: list[str], timeout_s: float = SCORE_TIMEOUT_S) -> None:
    """Poll feedback's table of dossiers until every id is there: a rating before the dossier's
    events reach feedback is held (an import) or refused (a citizen's code), so tests wait."""

    async def known() -> int:
        conn = await asyncpg.connect(CommonSettings().asyncpg_dsn)
        try:
            query = "SELECT count(*) FROM feedback.dossier_unit WHERE dossier_id = ANY($1::text[])"
            return int(await conn.fetchval(query, dossier_ids))
        finally:
            await conn.close()

    deadline = time.monotonic() + timeout_s
    while (count := asyncio.run(known())) < len(set(dossier_ids)):
        if time.monotonic() > deadline:
            pytest.fail(f"feedback knows {count} of {len(set(dossier_ids))} dossiers after {timeout_s} s")
        time.sleep(0.2)


def r2(x: float) -> float:
    """The methodology's rounding: half-up on the double's exact value."""
    return float(Decimal(x).quantize(Decimal("0.01"), ROUND_HALF_UP))


@pytest.fixture
def citizen(platform: str) -> Iterator[Callable[[], httpx.Client]]:
    """Factory of clients that each connect from a loopback address of their own."""
    clients: list[httpx.Client] = []

    def make() -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=next(_ADDRESSES))
        client = httpx.Client(base_url=platform, timeout=30, transport=transport)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="module")
def leader() -> dict[str, str]:
    token = mint_dev_token(GatewaySettings(), sub="e2e-feedback-leader", role="leader", unit="CT")
    return {"Authorization": f"Bearer {token}"}


# -- 1a. the citizen write limit ----------------------------------------------------------------


def test_eleventh_citizen_write_in_a_minute_is_429_per_address(
    citizen: Callable[[], httpx.Client],
    make_key: Callable[[str, list[str]], str],
) -> None:
    one, other = citizen(), citizen()
    # Ratings with a wrong code for dossiers that do not exist: each is a citizen write (403 from
    # feedback, no data created); distinct ids so the per-dossier lockout (423) never kicks in.
    answers = [
        one.post(
            "/api/v1/ratings",
            json={"dossier_id": f"RL-{uuid.uuid4().hex[:12]}", "rating_code": "ZZZZZZZZ", "level": "satisfied"},
        )
        for _ in range(11)
    ]
    assert [a.status_code for a in answers[:10]] == [403] * 10, [a.text for a in answers[:10]]
    eleventh = answers[10]
    assert eleventh.status_code == 429
    body = eleventh.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "too_many_requests"
    assert body["error"]["message"] and body["error"]["details"] == []
    assert 1 <= int(eleventh.headers["Retry-After"]) <= 61
    assert "X-Request-ID" in eleventh.headers
    # Every citizen write path shares the address's budget: a petition is refused as well.
    petition = one.post(
        "/api/v1/petitions",
        json={"unit_code": "P01", "category": "procedure", "title": "Giới hạn", "content": "Không được ghi nhận."},
    )
    assert petition.status_code == 429
    # Another address is not affected.
    assert other.post("/api/v1/ratings", json={"dossier_id": "RL-x", "rating_code": "ZZZZZZZZ"}).status_code == 422
    # Integrators are not citizens: the import endpoint from the limited address still answers.
    key = make_key("tms-rl", ["P01"])
    imported = one.post(
        "/api/v1/ratings/import",
        json=[{"dossier_id": "RL-imp", "level": "satisfied", "rated_at": "nope", "origin": "national_portal"}],
        headers={"Authorization": f"Bearer {key}"},
    )
    assert imported.status_code == 422, imported.text
    assert imported.json()["rejected"][0]["errors"][0]["field"] == "rated_at"


# -- 1b. a dissatisfied rating and petitions move group 5 ---------------------------------------


def _events(source: str, unit: str, prefix: str, at: Callable[[int], str], far_due: str) -> list[dict[str, Any]]:
    """Ten dossiers: D0–D7 completed on time, D8 completed after its due time, D9 open, not yet due."""
    events: list[dict[str, Any]] = []

    def ev(d: str, kind: str, minute: int, **data: Any) -> None:
        events.append(
            {
                "event_id": f"{d}:{kind}",
                "type": kind,
                "occurred_at": at(minute),
                "source": source,
                "data": {"dossier_id": d, **data},
            }
        )

    for i in range(10):
        d = f"{prefix}-D{i}"
        due = at(9) if i == 8 else far_due
        ev(
            d,
            "dossier.received",
            i,
            procedure_code="T.DKT.02",
            unit_code=unit,
            due_at=due,
            channel="online",
            online_level="full",
            applicant_type="citizen",
            officer_id=f"{unit}.O1",
        )
        ev(d, "dossier.synced", i + 1)
        if i < 9:
            ev(d, "dossier.completed", 10 + i if i < 8 else 20, outcome="approved", result_digitized=True)
    return events


def _indicators(breakdown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for g in breakdown["groups"] for i in g["indicators"]}


def _group(breakdown: dict[str, Any], group_id: str) -> float:
    return next(float(g["points"]) for g in breakdown["groups"] if g["id"] == group_id)


def _state(b: dict[str, Any]) -> dict[str, tuple[float, int, float]]:
    ind = _indicators(b)
    return {k: (ind[k]["numerator"], ind[k]["denominator"], ind[k]["points"]) for k in ("2.1", "5.2", "5.3", "5.4")}


def test_dissatisfied_rating_and_petitions_move_group_five_exactly(
    gateway: httpx.Client,
    citizen: Callable[[], httpx.Client],
    make_key: Callable[[str, list[str]], str],
    admin_token: str,
    leader: dict[str, str],
) -> None:
    now = datetime.now(VN_TZ)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    if now - month_start < timedelta(minutes=45) or next_month - now < timedelta(minutes=15):
        pytest.skip("too close to a month boundary for a running-period test")
    period = f"{now.year:04d}-{now.month:02d}"
    base = max(month_start + timedelta(minutes=1), now - timedelta(hours=3))

    def at(minute: int) -> str:
        return (base + timedelta(minutes=minute)).isoformat(timespec="seconds")

    far_due = (now + timedelta(days=20)).isoformat(timespec="seconds")

    suffix = uuid.uuid4().hex[:6].upper()
    province, local = f"E2EFB{suffix}", f"E2EFB{suffix}.L01"
    admin = {"Authorization": f"Bearer {admin_token}"}
    for code, body in (
        (province, {"name": f"Thuế tỉnh Thử nghiệm {suffix}", "level": "province", "parent_code": "CT"}),
        (local, {"name": f"Thuế cơ sở 1 Thử nghiệm {suffix}", "level": "local", "parent_code": province}),
    ):
        r = gateway.put(f"/api/v1/units/{code}", json={**body, "valid_from": "2025-07-01"}, headers=admin)
        assert r.status_code in (200, 201), r.text

    source = f"tms-e2efb-{suffix.lower()}"
    key = make_key(source, [province])
    prefix = f"FB{suffix}"
    answer = gateway.post(
        "/api/v1/events", json=_events(source, local, prefix, at, far_due), headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (29, [])
    codes: dict[str, str] = body["rating_codes"]
    assert len(codes) == 10

    def poll(expected: dict[str, tuple[float, int, float]], unit: str = local) -> dict[str, Any]:
        deadline = time.monotonic() + SCORE_TIMEOUT_S
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = gateway.get(f"/api/v1/scores/{unit}", params={"period": period}, headers=leader)
            if r.status_code == 200:
                last = r.json()
                if _state(last) == expected:
                    return last
            time.sleep(0.5)
        pytest.fail(f"{unit} {period}: expected {expected}, last seen {_state(last) if last else 'no score'}")

    # Before any feedback. 10 dossiers handled in the period (received in it).
    # 2.1: on time = D0–D7 finished by their due time + D9 open and not yet due = 9 / 10;
    #      P = 100·9/10 = 90 → 20·90/100 = 18.00.
    # 5.2, 5.3: no petitions, 0/0 → zero rule "full" → 6.00 each.
    # 5.4: neither overdue nor rated dissatisfied nor petitioned = 9 / 10; P = 90, threshold 90
    #      → min(6, 6·90/90) = 6.00.
    before = poll({"2.1": (9, 10, 18.0), "5.2": (0, 0, 6.0), "5.3": (0, 0, 6.0), "5.4": (9, 10, 6.0)})
    assert _group(before, "G5") == 18.0
    assert before["dossiers"] == 10 and before["provisional"] is True  # < 30 dossiers

    person = citizen()
    wait_until_feedback_knows(list(codes))

    def rate(i: int, level: str) -> None:
        d = f"{prefix}-D{i}"
        r = person.post("/api/v1/ratings", json={"dossier_id": d, "rating_code": codes[d], "level": level})
        assert r.status_code == 201, r.text

    # A dissatisfied rating of D0 (on time): D0 leaves 5.4's numerator. D3 is rated dissatisfied,
    # then satisfied: the second rating replaces the first, so D3 still counts as satisfied.
    rate(0, "dissatisfied")
    rate(3, "dissatisfied")
    rate(3, "satisfied")
    # 5.4 = 8 / 10: P = 80 → 6·80/90 = 5.333… → 5.33. 2.1 unchanged (ratings are not timeliness).
    after_rating = poll({"2.1": (9, 10, 18.0), "5.2": (0, 0, 6.0), "5.3": (0, 0, 6.0), "5.4": (8, 10, r2(6 * 80 / 90))})
    assert r2(6 * 80 / 90) == 5.33
    assert _group(after_rating, "G5") == r2(6.0 + 6.0 + 5.33) == 17.33

    # A petition about the overdue dossier D8.
    petition = person.post(
        "/api/v1/petitions",
        json={
            "unit_code": local,
            "dossier_id": f"{prefix}-D8",
            "category": "procedure",
            "title": "Trễ hạn giải quyết hồ sơ",
            "content": f"Hồ sơ {prefix}-D8 đã quá ngày hẹn trả nhưng chưa có kết quả.",
            "contact": "0900000000",
        },
    )
    assert petition.status_code == 201, petition.text
    assert set(petition.json()) == {"petition_id", "access_code"}
    # 5.2: the petition is open and its 15-working-day deadline is ahead = 1 / 1 → 6.00.
    # 5.3: received in the period, not overdue, no dislikes, not petitioned again = 1 / 1 → 6.00.
    # 5.4: D8 was already overdue, so naming it in a petition takes nothing more: still 8 / 10.
    poll({"2.1": (9, 10, 18.0), "5.2": (1, 1, 6.0), "5.3": (1, 1, 6.0), "5.4": (8, 10, 5.33)})

    # A petition about D1, on time and not rated: named in a petition, D1 leaves 5.4's numerator.
    second = person.post(
        "/api/v1/petitions",
        json={
            "unit_code": local,
            "dossier_id": f"{prefix}-D1",
            "category": "staff_conduct",
            "title": "Thái độ công chức",
            "content": "Cán bộ tiếp nhận thiếu nhiệt tình, hướng dẫn không rõ ràng.",
        },
    )
    assert second.status_code == 201, second.text
    # 5.2 = 2 / 2 → 6.00; 5.3 = 2 / 2 → 6.00; 5.4 = 7 / 10: P = 70 → 6·70/90 = 4.666… → 4.67.
    # G5 = r2(6 + 6 + 4.67) = 16.67.
    final = poll({"2.1": (9, 10, 18.0), "5.2": (2, 2, 6.0), "5.3": (2, 2, 6.0), "5.4": (7, 10, r2(6 * 70 / 90))})
    assert r2(6 * 70 / 90) == 4.67
    assert _group(final, "G5") == 16.67
    ind = _indicators(final)
    assert ind["5.4"]["ratio"] == 70.0 and ind["5.4"]["max_points"] == 6.0
    assert (ind["5.1"]["numerator"], ind["5.1"]["denominator"], ind["5.1"]["points"]) == (2, 2, 0.0)

    # The province is computed from the union of its subtree: the same counts.
    poll({"2.1": (9, 10, 18.0), "5.2": (2, 2, 6.0), "5.3": (2, 2, 6.0), "5.4": (7, 10, 4.67)}, unit=province)

    # The dossiers behind 5.4's shortfall, each with its reason.
    behind = gateway.get(f"/api/v1/scores/{local}/indicators/5.4/dossiers", params={"period": period}, headers=leader)
    assert behind.status_code == 200, behind.text
    reasons = {i["dossier_id"]: i["reason"] for i in behind.json()["items"]}
    assert set(reasons) == {f"{prefix}-D0", f"{prefix}-D1", f"{prefix}-D8"}
    assert "dissatisfied" in reasons[f"{prefix}-D0"]
    assert "petition" in reasons[f"{prefix}-D1"]
    assert "overdue" in reasons[f"{prefix}-D8"]


# -- a closed period keeps the rating it was judged with ----------------------------------------


def test_a_closed_period_keeps_the_ratings_given_in_it(
    gateway: httpx.Client,
    make_key: Callable[[str, list[str]], str],
    admin_token: str,
    leader: dict[str, str],
) -> None:
    # The last complete month: closed whatever the date, and always within the history scoring keeps.
    last_month = (datetime.now(VN_TZ).date().replace(day=1) - timedelta(days=1)).replace(day=1)
    period = f"{last_month:%Y-%m}"
    suffix = uuid.uuid4().hex[:6].upper()
    province, local = f"E2ERH{suffix}", f"E2ERH{suffix}.L01"
    admin = {"Authorization": f"Bearer {admin_token}"}
    for code, body in (
        (province, {"name": f"Thuế tỉnh Lịch sử {suffix}", "level": "province", "parent_code": "CT"}),
        (local, {"name": f"Thuế cơ sở 1 Lịch sử {suffix}", "level": "local", "parent_code": province}),
    ):
        r = gateway.put(f"/api/v1/units/{code}", json={**body, "valid_from": "2025-01-01"}, headers=admin)
        assert r.status_code in (200, 201), r.text
    source = f"tms-e2erh-{suffix.lower()}"
    auth = {"Authorization": f"Bearer {make_key(source, [province])}"}
    prefix = f"RH{suffix}"

    def dossier(i: int, day: int) -> list[dict[str, Any]]:
        d = f"{prefix}-D{i}"
        common = {"source": source, "data": {"dossier_id": d}}
        received = {
            "procedure_code": "T.DKT.02",
            "unit_code": local,
            "due_at": f"{period}-28T17:00:00+07:00",
            "channel": "online",
            "online_level": "full",
            "applicant_type": "citizen",
        }
        return [
            {
                **common,
                "event_id": f"{d}:rcv",
                "type": "dossier.received",
                "occurred_at": f"{period}-{day:02d}T09:00:00+07:00",
                "data": {"dossier_id": d, **received},
            },
            {
                **common,
                "event_id": f"{d}:cmp",
                "type": "dossier.completed",
                "occurred_at": f"{period}-{day + 1:02d}T09:00:00+07:00",
                "data": {"dossier_id": d, "outcome": "approved", "result_digitized": True},
            },
        ]

    def imported(i: int, level: str, rated_at: str) -> None:
        record = {"dossier_id": f"{prefix}-D{i}", "level": level, "rated_at": rated_at, "origin": "national_portal"}
        r = gateway.post("/api/v1/ratings/import", json=[record], headers=auth)
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

    def counts(indicator: str) -> tuple[float, int] | None:
        r = gateway.get(f"/api/v1/scores/{local}", params={"period": period}, headers=leader)
        if r.status_code != 200:
            return None
        ind = _indicators(r.json())[indicator]
        return ind["numerator"], ind["denominator"]

    def wait(indicator: str, expected: tuple[float, int]) -> None:
        deadline = time.monotonic() + SCORE_TIMEOUT_S
        while time.monotonic() < deadline and counts(indicator) != expected:
            time.sleep(0.5)
        assert counts(indicator) == expected

    assert gateway.post("/api/v1/events", json=dossier(0, 10) + dossier(1, 11), headers=auth).status_code == 200
    # The import must find the dossiers known to feedback (else it is held, not accepted): wait for them.
    wait_until_feedback_knows([f"{prefix}-D0", f"{prefix}-D1"])
    # The portal's form collected a dissatisfied rating of D0 in that month.
    imported(0, "dissatisfied", f"{period}-20T10:00:00+07:00")
    wait("5.4", (1, 2))
    # Later the citizen rates D0 again (satisfied) and D1 (satisfied); then the portal's rating of
    # D1 in that month (dissatisfied) arrives late, older than D1's current rating.
    now = datetime.now(VN_TZ).isoformat(timespec="seconds")
    imported(0, "satisfied", now)
    imported(1, "satisfied", now)
    imported(1, "dissatisfied", f"{period}-21T10:00:00+07:00")
    # A late dossier of that month makes the closed period be recomputed.
    assert gateway.post("/api/v1/events", json=dossier(2, 12), headers=auth).status_code == 200
    wait("2.1", (3, 3))
    # Judged at the month's end, D0's and D1's latest ratings before it are both dissatisfied. The
    # ratings travel through feedback and D2 through ingest, on queues of their own: the period
    # may be counted with D2 before D1's late rating is in, and again once it is.
    wait("5.4", (1, 3))


# -- an integrator's import is not a citizen's write ---------------------------------------------


def test_an_import_of_five_thousand_ratings_passes_the_gateway(
    gateway: httpx.Client, make_key: Callable[[str, list[str]], str]
) -> None:
    """The documented 5,000 records (~600 KB) are far above the citizen's 16 KB body limit."""
    suffix = uuid.uuid4().hex[:8].upper()
    records = [
        {
            "dossier_id": f"BULK-{suffix}-{i:04d}",
            "level": "satisfied",
            "criteria": {"conduct": 3},
            "rated_at": "2026-10-05T09:00:00+07:00",
            "origin": "national_portal",
        }
        for i in range(5000)
    ]
    key = make_key(f"tms-bulk-{suffix.lower()}", ["P01"])
    answer = gateway.post("/api/v1/ratings/import", json=records, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text[:500]
    # Nobody received these dossiers yet: every rating is held until its dossier arrives.
    assert answer.json()["held"] == 5000 and answer.json()["rejected"] == []
