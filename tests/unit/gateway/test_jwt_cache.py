"""A verified staff token is remembered until its exp: same answer, no second verification."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway import jwt_auth
from gateway.jwt_auth import TokenError, TokenVerifier, mint_dev_token
from gateway.settings import GatewaySettings


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        calls.append(token)
        return real(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt_auth.jwt, "decode", counting)
    return calls


def test_the_same_token_is_verified_once_until_it_expires(decodes: list[str]) -> None:
    settings = GatewaySettings()
    now = [time.time()]
    verifier = TokenVerifier(settings, clock=lambda: now[0])
    token = mint_dev_token(settings, sub="a", role="leader", unit="CT", ttl_s=600)
    first = verifier.verify(token)
    assert verifier.verify(token) == first and first.roles == ("leader",)
    assert len(decodes) == 1
    now[0] += 601  # past exp: verified afresh (here still within the real clock's validity)
    assert verifier.verify(token) == first
    assert len(decodes) == 2


def test_other_token_bytes_are_never_answered_from_the_cache(decodes: list[str]) -> None:
    settings = GatewaySettings()
    verifier = TokenVerifier(settings)
    token = mint_dev_token(settings, sub="a", role="admin", unit="CT")
    verifier.verify(token)
    head, claims, signature = token.split(".")
    tampered = f"{head}.{claims}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(TokenError):
        verifier.verify(tampered)
    with pytest.raises(TokenError):
        verifier.verify(token + " ")
    other_secret = GatewaySettings(jwt_hs256_secret="another-development-secret-of-enough-length")
    with pytest.raises(TokenError):
        TokenVerifier(other_secret).verify(token)  # keys belong to a verifier: no shared cache


def test_an_expired_token_is_refused_even_after_it_was_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt_auth, "CLOCK_SKEW_S", 0)  # no leeway, so expiry comes within the test
    settings = GatewaySettings()
    verifier = TokenVerifier(settings)
    now = int(time.time())
    claims = {"sub": "a", "roles": ["leader"], "unit": "CT", "aud": settings.jwt_audience, "iss": settings.jwt_issuer}
    token = jwt.encode({**claims, "iat": now, "exp": now + 1}, settings.jwt_hs256_secret, algorithm="HS256")
    assert verifier.verify(token).sub == "a"
    assert token in verifier._verified
    deadline = time.time() + 5
    while time.time() <= now + 1 and time.time() < deadline:
        time.sleep(0.05)
    with pytest.raises(TokenError, match="expired"):
        verifier.verify(token)
    assert token not in verifier._verified


def test_the_memory_is_bounded_and_keeps_the_recently_used() -> None:
    settings = GatewaySettings()
    verifier = TokenVerifier(settings, kept=2)
    a, b, c = (mint_dev_token(settings, sub=s, role="officer", unit="CT") for s in "abc")
    verifier.verify(a)
    verifier.verify(b)
    verifier.verify(a)
    verifier.verify(c)
    assert list(verifier._verified) == [a, c]
