"""Feedback settings (env prefix ``SQI_``, feedback-specific ones ``SQI_FEEDBACK_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import DEV_CONTACT_KEY, CommonSettings

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "data" / "reference"


class FeedbackSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SQI_", extra="ignore")
    # Production refuses the development contact key where it is used (bootstrap builds the sealer).
    development_secrets: ClassVar[dict[str, str]] = {
        **CommonSettings.development_secrets,
        "feedback_contact_key": DEV_CONTACT_KEY,
    }

    # Encrypts petitioners' contact details at rest (Fernet). Comma-separated for rotation:
    # the first key encrypts, all decrypt. Any string works; it is stretched with SHA-256.
    feedback_contact_key: str = DEV_CONTACT_KEY
    feedback_lockout_failures: int = Field(default=5, ge=1)
    feedback_lockout_minutes: int = Field(default=60, ge=1)
    # The same petition from the same client address within this many seconds is refused.
    feedback_duplicate_window_s: int = Field(default=60, ge=1)
    feedback_import_max_records: int = Field(default=5_000, ge=1)
    reference_dir: Path = REFERENCE_DIR

    @property
    def cookie_secure(self) -> bool:
        return self.environment == "production"
