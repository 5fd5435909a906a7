"""Staff tokens: audience, issuer and a maximum lifetime are checked (issue 10, item 8)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from gateway.jwt_auth import TokenError, TokenVerifier, mint_dev_token
from gateway.settings import GatewaySettings


def token(settings: GatewaySettings, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "u1",
        "roles": ["leader"],
        "unit": "CT",
        "iat": now,
        "exp": now + 600,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, settings.jwt_hs256_secret, algorithm="HS256")


def test_settings_come_from_the_documented_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQI_JWT_AUDIENCE", "sqi-prod")
    monkeypatch.setenv("SQI_JWT_ISSUER", "https://idp.gdt.gov.vn")
    monkeypatch.setenv("SQI_JWT_MAX_LIFETIME_SECONDS", "3600")
    settings = GatewaySettings()
    assert (settings.jwt_audience, settings.jwt_issuer, settings.jwt_max_lifetime_seconds) == (
        "sqi-prod",
        "https://idp.gdt.gov.vn",
        3600,
    )


def test_a_token_for_another_audience_or_issuer_is_refused() -> None:
    settings = GatewaySettings()
    verifier = TokenVerifier(settings)
    assert verifier.verify(token(settings)).sub == "u1"
    with pytest.raises(TokenError, match=r"(?i)audience"):
        verifier.verify(token(settings, aud="another-app"))
    with pytest.raises(TokenError, match=r"(?i)issuer"):
        verifier.verify(token(settings, iss="https://evil.example"))
    for missing in ("aud", "iss", "iat"):
        with pytest.raises(TokenError, match=missing):
            verifier.verify(token(settings, **{missing: None}))


def test_a_token_that_lives_too_long_is_refused() -> None:
    settings = GatewaySettings(jwt_max_lifetime_seconds=3600)
    verifier = TokenVerifier(settings)
    now = int(time.time())
    with pytest.raises(TokenError, match="longer than 3600"):
        verifier.verify(token(settings, iat=now, exp=now + 30 * 24 * 3600))
    with pytest.raises(TokenError, match=r"(?i)future|not yet valid"):
        verifier.verify(token(settings, iat=now + 3000, exp=now + 3500))
    assert verifier.verify(token(settings, iat=now, exp=now + 3600)).sub == "u1"


def test_dev_tokens_carry_the_configured_audience_issuer_and_a_bounded_lifetime() -> None:
    settings = GatewaySettings(jwt_audience="aud-x", jwt_issuer="iss-y", jwt_max_lifetime_seconds=900)
    minted = mint_dev_token(settings, sub="a", role="admin", unit="CT")
    claims = jwt.decode(minted, options={"verify_signature": False})
    assert (claims["aud"], claims["iss"], claims["exp"] - claims["iat"]) == ("aud-x", "iss-y", 900)
    assert TokenVerifier(settings).verify(minted).is_admin
