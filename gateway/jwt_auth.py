"""Staff tokens: RS256 JWTs from the department's identity provider; HS256 only in development."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
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
# Verified tokens remembered (least recently used forgotten first); only verified ones are
# kept, so forged or garbage tokens cannot grow it.
VERIFIED_TOKENS_KEPT = 4096


def load_public_keys(path: Path | None) -> list[Any]:
    """Keys from a JWKS (``{"keys": [...]}``) or a PEM file."""
    if path is None:
        return []
    text = path.read_text()
    if text.lstrip().startswith("{"):
        return [RSAAlgorithm.from_jwk(json.dumps(k)) for k in json.loads(text).get("keys", [])]
    return [text.encode()]


class TokenVerifier:
    """Verifies staff tokens, and remembers each verified one until its ``exp``.

    A browser or script sends the same token with every request: verifying it once (signature,
    claims, lifetime) and answering the same principal for the very same token string until the
    token's own expiry is exact, since nothing in that verification changes while the token is
    unexpired — the keys are fixed for the verifier's life, and ``iat``/``nbf`` that passed
    once keep passing. Past ``exp`` the token is verified afresh (the leeway decides, as before).
    """

    def __init__(
        self, settings: GatewaySettings, *, kept: int = VERIFIED_TOKENS_KEPT, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._rsa_keys = load_public_keys(settings.jwt_public_keys_file)
        # HS256 with a shared secret is for a developer's laptop, never for production.
        self._hs_secret = settings.jwt_hs256_secret if settings.environment != "production" else None
        self._kept = kept
        self._clock = clock
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None and self._clock() < cached[0]:
            self._verified.move_to_end(token)
            return cached[1]
        try:
            principal, expires = self._verify(token)
        except TokenError:
            self._verified.pop(token, None)
            raise
        self._verified[token] = (expires, principal)
        self._verified.move_to_end(token)
        while len(self._verified) > self._kept:
            self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        """The principal and the token's ``exp``, or :class:`TokenError`."""
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
        # A string or a list of strings: a number gave a 500, an object's keys were taken as roles.
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenError("the roles claim must be a string or a list of strings")
        roles = tuple(r for r in roles if r in STAFF_ROLES)
        if not roles:
            raise TokenError("the token carries no SQI role")
        unit = claims.get("unit")
        if not isinstance(unit, str) or not unit:
            raise TokenError("the token names no unit")
        return Principal(kind="staff", sub=str(claims["sub"]), roles=roles, unit=unit), float(claims["exp"])

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A stolen long-lived token is a standing key: refuse any that lives too long."""
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise TokenError("iat and exp must be numbers")
        if issued > time.time() + CLOCK_SKEW_S:
            raise TokenError("the token is issued in the future")
        if expires - issued > self._settings.jwt_max_lifetime_seconds:
            raise TokenError(f"the token lives longer than {self._settings.jwt_max_lifetime_seconds} seconds")
