"""Staff tokens: RS256 JWTs from the department's identity provider; HS256 only in development."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import jwt.types
from jwt.algorithms import RSAAlgorithm

from gateway.settings import GatewaySettings
from shared.dev_tokens import TokenError, mint_dev_token
from shared.identity import STAFF_ROLES, Principal

__all__ = ["TokenError", "TokenVerifier", "load_public_keys", "mint_dev_token"]

CLOCK_SKEW_S = 60


def load_public_keys(path: Path | None) -> list[Any]:
    """Keys from a JWKS (``{"keys": [...]}``) or a PEM file."""
    if path is None:
        return []
    text = path.read_text()
    if text.lstrip().startswith("{"):
        return [RSAAlgorithm.from_jwk(json.dumps(k)) for k in json.loads(text).get("keys", [])]
    return [text.encode()]


class TokenVerifier:
    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._rsa_keys = load_public_keys(settings.jwt_public_keys_file)
        # HS256 with a shared secret is for a developer's laptop, never for production.
        self._hs_secret = settings.jwt_hs256_secret if settings.environment != "production" else None

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        options: jwt.types.Options = {"require": ["exp", "iat", "sub", "aud", "iss"]}
        kwargs: dict[str, Any] = {
            "audience": self._settings.jwt_audience,
            "issuer": self._settings.jwt_issuer,
            "leeway": CLOCK_SKEW_S,
        }
        claims: dict[str, Any] | None = None
        if header.get("alg") == "RS256":
            for key in self._rsa_keys:
                try:
                    claims = jwt.decode(token, key, algorithms=["RS256"], options=options, **kwargs)
                    break
                except jwt.InvalidSignatureError:
                    continue
                except jwt.PyJWTError as exc:
                    raise TokenError(str(exc)) from exc
        elif header.get("alg") == "HS256" and self._hs_secret:
            try:
                claims = jwt.decode(token, self._hs_secret, algorithms=["HS256"], options=options, **kwargs)
            except jwt.PyJWTError as exc:
                raise TokenError(str(exc)) from exc
        if claims is None:
            raise TokenError("signature not verified by any configured key")
        self._check_lifetime(claims)
        roles = claims.get("roles") or []
        if isinstance(roles, str):
            roles = [roles]
        roles = tuple(r for r in roles if r in STAFF_ROLES)
        if not roles:
            raise TokenError("the token carries no SQI role")
        unit = claims.get("unit")
        if not isinstance(unit, str) or not unit:
            raise TokenError("the token names no unit")
        return Principal(kind="staff", sub=str(claims["sub"]), roles=roles, unit=unit)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A stolen long-lived token is a standing key: refuse any that lives too long."""
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise TokenError("iat and exp must be numbers")
        if issued > time.time() + CLOCK_SKEW_S:
            raise TokenError("the token is issued in the future")
        if expires - issued > self._settings.jwt_max_lifetime_seconds:
            raise TokenError(f"the token lives longer than {self._settings.jwt_max_lifetime_seconds} seconds")
