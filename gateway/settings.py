"""Gateway settings (env prefix ``SQI_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from shared.settings import CommonSettings


class GatewaySettings(CommonSettings):
    ingest_url: str = "http://127.0.0.1:8001"
    scoring_url: str = "http://127.0.0.1:8002"
    feedback_url: str = "http://127.0.0.1:8003"
    reporting_url: str = "http://127.0.0.1:8004"
    # RS256 public keys of the department's identity provider: a JWKS or PEM file.
    jwt_public_keys_file: Path | None = None
    # Citizen writes per client address per minute (api.md default 10).
    citizen_writes_per_minute: int = Field(default=10, ge=1)
    citizen_max_bytes: int = 16 * 1024
    events_max_bytes: int = 10 * 1024 * 1024
    default_max_bytes: int = 1024 * 1024
    upstream_timeout_s: float = 30.0  # also the longest silence of an event stream (heartbeats: 15 s)
    # Event streams (the dashboard's live refresh) open at once through one gateway process.
    max_event_streams: int = Field(default=500, ge=1)
    # Only behind a trusted proxy may X-Forwarded-For name the client.
    trust_forwarded_for: bool = False
    api_key_cache_s: float = 30.0
    # Key ids remembered (known and unknown alike), least recently used forgotten first.
    api_key_cache_size: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _production_needs_the_identity_provider_keys(self) -> GatewaySettings:
        # Production accepts only RS256 staff tokens: without the provider's keys nobody could sign in.
        if self.environment == "production" and self.jwt_public_keys_file is None:
            raise ValueError("production requires SQI_JWT_PUBLIC_KEYS_FILE (the identity provider's RS256 keys)")
        return self
