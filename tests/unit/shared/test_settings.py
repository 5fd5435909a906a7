from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import CommonSettings


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError, match="development secrets"):
        CommonSettings(environment="production")


def test_production_with_real_secrets_starts() -> None:
    settings = CommonSettings(
        environment="production",
        internal_token="x" * 40,
        jwt_hs256_secret="unused-in-production-but-not-default",
        rating_code_keys="1:a-real-secret",
    )
    assert settings.environment == "production"


def test_short_internal_token_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        CommonSettings(environment="production", internal_token="short", jwt_hs256_secret="s", rating_code_keys="1:k")
