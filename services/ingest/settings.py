"""Ingest settings (env prefix ``SQI_``, ingest-specific ones ``SQI_INGEST_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "data" / "reference"


class IngestSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SQI_", extra="ignore")

    ingest_max_events: int = Field(default=10_000, ge=1)
    ingest_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Events more than this far in the future are rejected (clock skew tolerance).
    ingest_future_tolerance_hours: int = 24
    # Accepted events travel in messages of at most this many events.
    ingest_message_batch: int = Field(default=500, ge=1, le=5_000)
    reference_dir: Path = REFERENCE_DIR
