"""Gateway settings (env prefix ``SQI_``)."""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

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
    # Citizen writes per IPv6 site (/48) per minute, whatever /64 inside it writes: a holder of a
    # /48 would otherwise get 65,536 client limits. An office network behind one /48 shares it.
    citizen_writes_per_minute_per_site: int = Field(default=200, ge=1)
    # Clients (IPv4 addresses, IPv6 /64s) the limit remembers at once: ~0.4 kB each at the full
    # limit. When that many wrote within the last minute a new one is refused (gateway.ratelimit).
    citizen_write_clients_max: int = Field(default=100_000, ge=1)
    citizen_max_bytes: int = 16 * 1024
    # The request's header block (uvicorn's httptools parser takes any size, and the gateway
    # forwards it): refused past these with 431. A staff token and the cookies fit in a few KB.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    max_header_fields: int = Field(default=100, ge=10)
    events_max_bytes: int = 10 * 1024 * 1024
    default_max_bytes: int = 1024 * 1024
    upstream_timeout_s: float = 30.0  # also the longest silence of an event stream (heartbeats: 15 s)
    # Event streams (the dashboard's live refresh) open at once through one gateway process.
    max_event_streams: int = Field(default=500, ge=1)
    # Who may name the client in X-Forwarded-For (gateway.clients): peers in these networks
    # (comma-separated CIDRs, e.g. the ingress controllers' pod network)...
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(default_factory=list)
    # ...or any peer, one hop (its rightmost entry): only where the network admits no one but
    # the ingress (k8s/base: NetworkPolicy). Default: no one; the peer is the client.
    trust_forwarded_for: bool = False
    api_key_cache_s: float = 30.0
    # Key ids remembered (known and unknown alike), least recently used forgotten first.
    api_key_cache_size: int = Field(default=10_000, ge=1)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # The environment gives "10.0.0.0/8, fd00::/8"; a JSON list works too.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _production_needs_the_identity_provider_keys(self) -> GatewaySettings:
        # Production accepts only RS256 staff tokens: without the provider's keys nobody could sign in.
        if self.environment == "production" and self.jwt_public_keys_file is None:
            raise ValueError("production requires SQI_JWT_PUBLIC_KEYS_FILE (the identity provider's RS256 keys)")
        return self
