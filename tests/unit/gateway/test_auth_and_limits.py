from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.datastructures import Headers

from gateway.jwt_auth import TokenError, TokenVerifier, mint_dev_token
from gateway.ratelimit import RateLimiter
from gateway.routing import match
from gateway.settings import GatewaySettings

PROD = {"environment": "production", "internal_token": "t" * 40, "jwt_hs256_secret": "h", "rating_code_keys": "1:k"}


def rs256_setup(tmp_path):  # type: ignore[no-untyped-def]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return key, path


def claims(**extra):  # type: ignore[no-untyped-def]
    now = int(time.time())
    return {
        "sub": "u1",
        "roles": ["unit_head"],
        "unit": "P01",
        "iat": now,
        "exp": now + 60,
        "aud": "sqi-api",
        "iss": "sqi-dev",
        **extra,
    }


def test_rs256_token_from_the_identity_provider_is_accepted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    key, path = rs256_setup(tmp_path)
    verifier = TokenVerifier(GatewaySettings(**PROD, jwt_public_keys_file=path))
    principal = verifier.verify(jwt.encode(claims(), key, algorithm="RS256"))
    assert (principal.kind, principal.sub, principal.roles, principal.unit) == ("staff", "u1", ("unit_head",), "P01")


def test_hs256_is_refused_in_production_and_dev_tokens_cannot_be_minted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, path = rs256_setup(tmp_path)
    settings = GatewaySettings(**PROD, jwt_public_keys_file=path)
    with pytest.raises(TokenError):
        TokenVerifier(settings).verify(jwt.encode(claims(), "h", algorithm="HS256"))
    with pytest.raises(TokenError, match="production"):
        mint_dev_token(settings, sub="x", role="admin", unit="CT")


def test_dev_token_round_trip_and_bad_tokens() -> None:
    settings = GatewaySettings()
    verifier = TokenVerifier(settings)
    assert verifier.verify(mint_dev_token(settings, sub="a", role="leader", unit="CT")).roles == ("leader",)
    with pytest.raises(TokenError):
        verifier.verify(jwt.encode(claims(exp=int(time.time()) - 120), settings.jwt_hs256_secret, algorithm="HS256"))
    with pytest.raises(TokenError, match="no SQI role"):
        verifier.verify(jwt.encode(claims(roles=["root"]), settings.jwt_hs256_secret, algorithm="HS256"))
    with pytest.raises(TokenError):
        verifier.verify("not-a-jwt")


def test_rate_limiter_allows_ten_a_minute_per_address() -> None:
    now = [1000.0]
    limiter = RateLimiter(10, clock=lambda: now[0])
    assert all(limiter.allow("1.2.3.4")[0] for _ in range(10))
    allowed, retry_after, crowded = limiter.allow("1.2.3.4")
    assert not allowed and not crowded and 1 <= retry_after <= 61
    assert limiter.allow("5.6.7.8")[0]  # another address is not affected
    now[0] += 61
    assert limiter.allow("1.2.3.4")[0]


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/api/v1/events", "ingest"),
        ("/api/v1/dossiers/D1/rating-code", "ingest"),
        ("/api/v1/scores/P01/indicators/2.1/dossiers", "scoring"),
        ("/api/v1/petitions/123/reaction", "feedback"),
        ("/rate", "feedback"),
        ("/rate/thanks", "feedback"),
        ("/petition/abc", "feedback"),
        ("/", "reporting"),
    ],
)
def test_routes(path: str, service: str) -> None:
    route = match(path)
    assert route is not None and route.service == service


def test_unknown_paths_do_not_route() -> None:
    assert match("/api/v1/eventsX") is None
    assert match("/ratex") is None
    assert match("/admin") is None


class _Request:
    def __init__(self, forwarded: str | None, peer: str = "10.0.0.5") -> None:
        self.headers = Headers({"x-forwarded-for": forwarded} if forwarded else {})
        self.client = type("Client", (), {"host": peer})()


def test_client_address_cannot_be_forged_through_x_forwarded_for() -> None:
    from gateway.app import Gateway

    behind_ingress = Gateway(GatewaySettings(trust_forwarded_for=True))
    # The ingress appends the address it saw; the client's own entries are to its left.
    assert behind_ingress.client_address(_Request("6.6.6.6, 203.0.113.9")) == "203.0.113.9"  # type: ignore[arg-type]
    assert behind_ingress.client_address(_Request("203.0.113.9")) == "203.0.113.9"  # type: ignore[arg-type]
    direct = Gateway(GatewaySettings())
    assert direct.client_address(_Request("6.6.6.6")) == "10.0.0.5"  # type: ignore[arg-type]
