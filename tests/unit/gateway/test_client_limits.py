"""The citizen write limit cannot be escaped by address, and its memory is bounded.

Before session 19 the limiter counted every address on its own and remembered up to 100,000 of
them, forgetting only idle ones: a client rotating IPv6 addresses within its /64 (2^64 of them)
wrote without limit and grew the gateway's memory with each address. A client could also name
its own address when the proxy in front added its own X-Forwarded-For line (the first line was
read). Each test here failed before the change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.clients import client_address, limit_key, site_key
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from tests.unit.gateway.conftest import Service

LIMIT = 3
RATING = {"dossier_id": "D1", "rating_code": "ABCDEFGH", "level": "satisfied"}
INGRESS = [ip_network("10.0.0.0/8")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    clock = Clock()
    limiter = RateLimiter(LIMIT, clock=clock)
    rotated = [limit_key(f"2001:db8:1:2::{i:x}") for i in range(LIMIT + 1)]
    assert [limiter.allow(key)[0] for key in rotated] == [True] * LIMIT + [False]
    assert limiter.allow(limit_key("2001:db8:1:3::1"))[0]  # the next /64 is someone else
    assert limit_key("::ffff:198.51.100.7") == limit_key("198.51.100.7") == "198.51.100.7"


def test_an_ipv6_site_is_its_48_and_ipv4_has_none() -> None:
    assert site_key("2001:db8:1:2::7") == site_key("2001:db8:1:ffff::1") == "2001:db8:1::/48"
    assert site_key("2001:db8:2::1") == "2001:db8:2::/48"
    assert site_key("198.51.100.7") is None and site_key("::ffff:198.51.100.7") is None


def test_a_full_limiter_refuses_new_clients_and_never_resets_a_known_one() -> None:
    clock = Clock()
    limiter = RateLimiter(LIMIT, clock=clock, max_clients=2)
    assert all(limiter.allow("victim-or-attacker")[0] for _ in range(LIMIT))
    assert limiter.allow("b")[0]
    # Full: a new client is refused (crowded), and flooding with new ones frees nothing.
    for i in range(100):
        allowed, retry_after, *crowded = limiter.allow(f"fresh-{i}")
        assert not allowed and crowded == [True] and 1 <= retry_after <= 61
    assert len(limiter) == 2
    assert not limiter.allow("victim-or-attacker")[0]  # its count survived the flood
    clock.now += 60.5  # a minute after their last writes both are forgotten
    assert limiter.allow("fresh-0")[0]
    assert len(limiter) == 1


def test_idle_clients_are_forgotten_as_time_passes() -> None:
    clock = Clock()
    limiter = RateLimiter(LIMIT, clock=clock, max_clients=1000)
    for i in range(500):
        clock.now += 0.1
        limiter.allow(f"c{i}")
    assert len(limiter) == 500
    clock.now += 30
    limiter.allow("late")
    assert 200 < len(limiter) < 500  # those silent for a minute are gone, the others stay


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "any_peer", "expected"),
    [
        # Default: nobody is trusted; a header names nothing.
        ("198.51.100.7", ["6.6.6.6"], [], False, "198.51.100.7"),
        # A peer outside the trusted networks is the client, whatever it writes.
        ("198.51.100.7", ["6.6.6.6"], INGRESS, False, "198.51.100.7"),
        # Behind the ingress: its entry is the rightmost; the client's own entries are left of it.
        ("10.1.2.3", ["6.6.6.6, 203.0.113.9"], INGRESS, False, "203.0.113.9"),
        # Two proxies of ours: walk past the trusted hop.
        ("10.1.2.3", ["6.6.6.6, 203.0.113.9, 10.9.9.9"], INGRESS, False, "203.0.113.9"),
        # A proxy adding its own field line: the client's line comes first and is not read.
        ("10.1.2.3", ["6.6.6.6", "203.0.113.9"], INGRESS, False, "203.0.113.9"),
        ("10.1.2.3", ["6.6.6.6", "203.0.113.9"], [], True, "203.0.113.9"),
        # One hop only when every peer is trusted: never the client's own entries.
        ("10.1.2.3", ["6.6.6.6, 10.9.9.9"], [], True, "10.9.9.9"),
        # Garbage where an address should be: the last address a trusted hop vouched for.
        ("10.1.2.3", ["unknown"], INGRESS, False, "10.1.2.3"),
        ("10.1.2.3", ["[2001:db8::1]:443"], INGRESS, False, "2001:db8::1"),
        ("10.1.2.3", ["198.51.100.7:5000"], INGRESS, False, "198.51.100.7"),
    ],
)
def test_the_trust_rule(peer: str, forwarded: list[str], trusted: list, any_peer: bool, expected: str) -> None:
    assert client_address(peer, forwarded, trusted=trusted, trust_any_peer=any_peer) == expected


def test_trusted_proxies_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQI_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")
    assert GatewaySettings().trusted_proxies == [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]
    monkeypatch.setenv("SQI_TRUSTED_PROXIES", "10.0.0.1/8")  # host bits: a typo, refused at start
    with pytest.raises(ValueError):
        GatewaySettings()


@pytest.fixture
async def gateway(service: Service) -> AsyncIterator[Callable[..., FastAPI]]:
    pools: list[Upstream] = []

    def make(**settings: Any) -> FastAPI:
        app = create_app(GatewaySettings(citizen_writes_per_minute=LIMIT, **settings))
        pool = Upstream(service.base_url, timeout_s=5, connect_timeout_s=3, max_connections=10)
        pools.append(pool)
        app.state.gateway.services = dict.fromkeys(app.state.gateway.services, pool)
        return app

    service.answer = lambda _: (201, [(b"content-type", b"application/json")], b'{"ok": true}')
    yield make
    for pool in pools:
        await pool.aclose()


async def rate(app: FastAPI, peer: str, headers: list[tuple[str, str]] | None = None) -> httpx.Response:
    """A citizen's rating as it reaches the gateway from ``peer`` (the TCP connection's other end)."""
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post("/api/v1/ratings", json=RATING, headers=headers)


async def test_rotating_ipv6_addresses_within_a_64_does_not_escape_the_limit(
    gateway: Callable[..., FastAPI],
) -> None:
    app = gateway()
    answers = [await rate(app, f"2001:db8:7::{i:x}") for i in range(LIMIT + 1)]
    assert [r.status_code for r in answers] == [201] * LIMIT + [429]
    assert answers[-1].headers["retry-after"].isdigit()
    assert (await rate(app, "2001:db8:8::1")).status_code == 201  # another /64, another client


async def test_a_second_forwarded_line_does_not_name_the_client(gateway: Callable[..., FastAPI]) -> None:
    """A proxy that adds its own X-Forwarded-For line leaves the client's line first: it was read."""
    app = gateway(trust_forwarded_for=True)
    statuses = []
    for i in range(LIMIT + 1):
        headers = [("X-Forwarded-For", f"6.6.6.{i}"), ("X-Forwarded-For", "203.0.113.9")]
        statuses.append((await rate(app, "10.1.2.3", headers)).status_code)
    assert statuses == [201] * LIMIT + [429]


async def test_only_a_trusted_proxy_names_the_client(gateway: Callable[..., FastAPI]) -> None:
    app = gateway(trusted_proxies=INGRESS)
    # Through the ingress, each client has its own budget...
    assert [(await rate(app, "10.1.2.3", [("X-Forwarded-For", f"203.0.113.{i}")])).status_code for i in range(5)] == [
        201
    ] * 5
    # ...and straight to the gateway, a header names nobody.
    direct = [(await rate(app, "198.51.100.7", [("X-Forwarded-For", f"6.6.6.{i}")])).status_code for i in range(4)]
    assert direct == [201] * LIMIT + [429]


async def test_a_full_limiter_answers_503_with_retry_after(gateway: Callable[..., FastAPI]) -> None:
    app = gateway(citizen_write_clients_max=5)
    for i in range(5):
        assert (await rate(app, f"203.0.113.{i}")).status_code == 201
    r = await rate(app, "203.0.113.99")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable" and 1 <= int(r.headers["retry-after"]) <= 61
    assert (await rate(app, "203.0.113.0")).status_code == 201  # a known client keeps its allowance


async def test_the_64s_of_one_48_share_the_sites_limit(gateway: Callable[..., FastAPI]) -> None:
    """A holder of a /48 has 65,536 /64s, each a client: each got its own limit, so the site wrote
    65,536 × the limit a minute. They now also count against their /48's."""
    app = gateway(citizen_writes_per_minute_per_site=LIMIT + 2)
    statuses = [(await rate(app, f"2001:db8:9:{i:x}::1")).status_code for i in range(LIMIT + 3)]
    assert statuses == [201] * (LIMIT + 2) + [429]
    refused = await rate(app, "2001:db8:9:ffff::1")
    assert refused.status_code == 429 and "/48" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"].isdigit()
    assert (await rate(app, "2001:db8:a::1")).status_code == 201  # another /48, another site
    assert (await rate(app, "203.0.113.5")).status_code == 201  # IPv4 has no site


async def test_a_client_refused_for_its_own_writes_takes_nothing_from_its_site(
    gateway: Callable[..., FastAPI],
) -> None:
    app = gateway(citizen_writes_per_minute_per_site=LIMIT + 1)
    noisy = [(await rate(app, "2001:db8:b:1::1")).status_code for _ in range(LIMIT + 5)]
    assert noisy == [201] * LIMIT + [429] * 5
    assert (await rate(app, "2001:db8:b:2::1")).status_code == 201  # the neighbour's write still fits
