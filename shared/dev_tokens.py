"""Development staff tokens (HS256): ``./sqi token``, the dashboard's development sign-in, tests.

One minting function, so every development token carries what the gateway checks (audience,
issuer, a lifetime within the maximum). Refused with production settings, where only the
identity provider's RS256 tokens are accepted.
"""

from __future__ import annotations

import time

import jwt

from shared.identity import STAFF_ROLES
from shared.settings import CommonSettings


class TokenError(Exception):
    """A staff token that cannot be minted or is not acceptable."""


def mint_dev_token(settings: CommonSettings, *, sub: str, role: str, unit: str, ttl_s: int | None = None) -> str:
    """A staff token signed with the development key; refused in production."""
    if settings.environment == "production":
        raise TokenError("development tokens are refused with production settings")
    if role not in STAFF_ROLES:
        raise TokenError(f"role must be one of {', '.join(STAFF_ROLES)}")
    now = int(time.time())
    lifetime = min(ttl_s or settings.jwt_max_lifetime_seconds, settings.jwt_max_lifetime_seconds)
    claims = {
        "sub": sub,
        "roles": [role],
        "unit": unit,
        "iat": now,
        "exp": now + lifetime,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
    }
    return jwt.encode(claims, settings.jwt_hs256_secret, algorithm="HS256")
