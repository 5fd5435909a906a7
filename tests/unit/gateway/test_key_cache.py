"""Unknown API-key ids cannot grow the gateway's memory (issue 10, item 8)."""

from __future__ import annotations

import secrets

from gateway.keys import KeyVerifier, _hash
from shared.identity import Principal

KNOWN = Principal(kind="integrator", sub="key:abc", source="tms", units=("P01",), key_id="abc")


class CountingVerifier(KeyVerifier):
    def __init__(self, **kwargs: object) -> None:
        self.now = 0.0
        super().__init__(None, clock=lambda: self.now, **kwargs)  # type: ignore[arg-type]
        self.loads = 0

    async def _load(self, key_id: str) -> tuple[str, Principal] | None:
        self.loads += 1
        return (_hash("secret"), KNOWN) if key_id == "abc" else None


async def test_random_key_ids_are_bounded_and_forgotten() -> None:
    verifier = CountingVerifier(cache_s=30, max_entries=100)
    for _ in range(5_000):
        assert await verifier.verify(f"sqi_{secrets.token_hex(6)}_x") is None
    assert len(verifier) == 100
    assert await verifier.verify("sqi_abc_secret") == KNOWN
    assert await verifier.verify("sqi_abc_wrong") is None
    assert len(verifier) == 100


async def test_unknown_ids_are_cached_briefly_then_looked_up_again() -> None:
    verifier = CountingVerifier(cache_s=30, max_entries=10)
    for _ in range(3):
        assert await verifier.verify("sqi_0000dead_x") is None
    assert verifier.loads == 1
    verifier.now += 31
    assert await verifier.verify("sqi_0000dead_x") is None
    assert verifier.loads == 2


async def test_overlong_key_ids_are_not_looked_up() -> None:
    verifier = CountingVerifier(cache_s=30)
    assert await verifier.verify("sqi_" + "a" * 3000 + "_x") is None
    assert verifier.loads == 0 and len(verifier) == 0


async def test_key_ids_that_are_not_hex_are_not_looked_up() -> None:
    verifier = CountingVerifier(cache_s=30)
    for presented in ("sqi_ab\u00e9_x", "sqi_../_x", "sqi_ABC_x", "sqi__x"):
        assert await verifier.verify(presented) is None
    assert verifier.loads == 0 and len(verifier) == 0
