"""Settings common to every SQI process (pydantic-settings, env prefix ``SQI_``).

Each service subclasses :class:`CommonSettings` and adds its own fields. Secrets have
development defaults so that ``./sqi up`` works on a laptop, and a guard refuses to start
with those defaults when ``SQI_ENVIRONMENT=production``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_TOKEN = "dev-internal-token-not-for-production"  # noqa: S105 (refused in production)
DEV_JWT_SECRET = "dev-jwt-secret-not-for-production-0123456789"  # noqa: S105 (refused in production)
DEV_RATING_CODE_KEYS = "1:dev-rating-code-key-not-for-production"
DEV_CONTACT_KEY = "ZGV2LWNvbnRhY3Qta2V5LW5vdC1mb3ItcHJvZHVjdGlvbg=="

_DEV_SECRETS = {
    "internal_token": DEV_INTERNAL_TOKEN,
    "jwt_hs256_secret": DEV_JWT_SECRET,
    "rating_code_keys": DEV_RATING_CODE_KEYS,
}


class CommonSettings(BaseSettings):
    """What every process needs: where the database and broker are, and shared secrets."""

    model_config = SettingsConfigDict(env_prefix="SQI_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/sqi"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Prefix for every exchange and queue name: lets test runs use the shared broker
    # without touching the platform's own topology.
    bus_prefix: str = ""
    internal_token: str = DEV_INTERNAL_TOKEN
    jwt_hs256_secret: str = DEV_JWT_SECRET
    # "version:secret,version:secret[:valid_until ISO date]" — the highest version signs new codes.
    rating_code_keys: str = DEV_RATING_CODE_KEYS
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, ge=1)
    # Workers answer /healthz, /readyz and /metrics on this port when it is set (Kubernetes probes).
    worker_http_port: int | None = None

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> CommonSettings:
        if self.environment == "production":
            weak = [name for name, dev in _DEV_SECRETS.items() if getattr(self, name) == dev]
            if weak:
                raise ValueError(f"production refuses development secrets: {', '.join(weak)}")
            if len(self.internal_token) < 32:
                raise ValueError("SQI_INTERNAL_TOKEN must be at least 32 characters in production")
        return self

    @cached_property
    def asyncpg_dsn(self) -> str:
        """The same database URL in the form asyncpg and psql understand."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def exchange(self, name: str) -> str:
        return f"{self.bus_prefix}{name}"
