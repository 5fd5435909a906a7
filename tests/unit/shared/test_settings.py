from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from services.feedback.settings import FeedbackSettings
from shared.settings import DEV_CONTACT_KEY, CommonSettings, DevelopmentSecretRefused, with_credentials


def test_production_refuses_a_development_secret_where_it_is_used() -> None:
    settings = CommonSettings(environment="production")
    with pytest.raises(DevelopmentSecretRefused, match="SQI_INTERNAL_TOKEN"):
        _ = settings.internal_token
    with pytest.raises(DevelopmentSecretRefused, match="SQI_RATING_CODE_KEYS"):
        _ = settings.rating_code_keys
    # A process that never reads them (a worker, the migration Job) starts without them.
    assert settings.database_url


def test_development_keeps_its_defaults() -> None:
    settings = CommonSettings()
    assert settings.internal_token and settings.jwt_hs256_secret and settings.rating_code_keys


def test_hs256_is_off_in_production_so_its_key_is_not_required() -> None:
    settings = CommonSettings(environment="production", internal_token="x" * 40)
    assert not settings.hs256_enabled
    assert settings.internal_token == "x" * 40


def test_production_with_real_secrets_starts() -> None:
    settings = CommonSettings(environment="production", internal_token="x" * 40, rating_code_keys="1:a-real-secret")
    assert (settings.internal_token, settings.rating_code_keys) == ("x" * 40, "1:a-real-secret")


def test_short_internal_token_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        CommonSettings(environment="production", internal_token="short")


def test_feedback_refuses_the_development_contact_key_in_production() -> None:
    settings = FeedbackSettings(environment="production", feedback_contact_key=f"new-key,{DEV_CONTACT_KEY}")
    with pytest.raises(DevelopmentSecretRefused, match="SQI_FEEDBACK_CONTACT_KEY"):
        _ = settings.feedback_contact_key
    assert FeedbackSettings(environment="production", feedback_contact_key="k1,k2").feedback_contact_key == "k1,k2"


def test_gateway_in_production_needs_the_identity_provider_keys() -> None:
    with pytest.raises(ValidationError, match="SQI_JWT_PUBLIC_KEYS_FILE"):
        GatewaySettings(environment="production", internal_token="x" * 40)


def test_passwords_from_operator_secrets_are_escaped_into_the_urls() -> None:
    settings = CommonSettings(
        database_url="postgresql+asyncpg://sqi_ingest@sqi-pg-rw:5432/sqi?ssl=require",
        database_password="p/w@:x",
        amqp_url="amqps://rabbitmq:5671/sqi",
        amqp_username="sqi-ingest",
        amqp_password="a+b/c=",
    )
    assert settings.database_url == "postgresql+asyncpg://sqi_ingest:p%2Fw%40%3Ax@sqi-pg-rw:5432/sqi?ssl=require"
    assert settings.asyncpg_dsn == "postgresql://sqi_ingest:p%2Fw%40%3Ax@sqi-pg-rw:5432/sqi?sslmode=require"
    assert settings.amqp_url == "amqps://sqi-ingest:a%2Bb%2Fc%3D@rabbitmq:5671/sqi"
    assert settings.listen_dsn == settings.asyncpg_dsn  # no listen URL: the database's own
    with pytest.raises(ValueError, match="user name"):
        with_credentials("amqp://host/", password="p")


def test_a_listen_url_past_the_pooler_gets_the_same_password() -> None:
    settings = CommonSettings(
        database_url="postgresql+asyncpg://sqi_scoring@pooler:5432/sqi?ssl=require",
        listen_database_url="postgresql+asyncpg://sqi_scoring@sqi-pg-rw:5432/sqi?ssl=require",
        database_password="p/w",
    )
    assert settings.asyncpg_dsn == "postgresql://sqi_scoring:p%2Fw@pooler:5432/sqi?sslmode=require"
    assert settings.listen_dsn == "postgresql://sqi_scoring:p%2Fw@sqi-pg-rw:5432/sqi?sslmode=require"
