"""Reporting settings (env prefix ``SQI_``, reporting-specific ones ``SQI_REPORTING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "data" / "reference"


class ReportingSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SQI_", extra="ignore")

    # Where scoring answers (the methodology documents are fetched from it and cached).
    scoring_url: str = "http://127.0.0.1:8002"
    # A dossier is "due soon" when its due time falls within this many working days.
    reporting_due_soon_wd: int = Field(default=2, ge=0, le=30)
    # Score drops and grade changes stay in the warnings this many days after they happened.
    reporting_alert_days: int = Field(default=7, ge=1)
    # A feed is silent when it has sent nothing for this many times its usual gap …
    reporting_feed_silent_factor: float = Field(default=3.0, gt=1)
    # … and for at least this long (short gaps of a busy feed are not worth a warning) …
    reporting_feed_silent_min_s: int = Field(default=900, ge=1)
    # … or, for a feed whose usual gap is not known yet, for this long.
    reporting_feed_silent_default_s: int = Field(default=86_400, ge=1)
    reporting_default_methodology: str = "tax-2025"
    # Finished dossiers are kept this long (a late event must not reopen them), then dropped.
    reporting_finished_keep_days: int = Field(default=45, ge=1)
    # Dropped dossiers' ids are kept this long after the drop (their late events are ignored), then
    # forgotten: the sweep raises the horizon before which unknown dossiers are not taken in.
    reporting_dropped_keep_days: int = Field(default=365, ge=1)
    reference_dir: Path = REFERENCE_DIR
    # How often the API refreshes its cached methodology documents from scoring.
    reporting_methodology_refresh_s: int = Field(default=300, ge=5)
    # A cached public page may be served this long after the read model changed, while the new
    # one renders in the background (0: every change is rendered before it is served).
    reporting_page_stale_s: float = Field(default=1.0, ge=0)
    # Live dashboard (server-sent events): clients per API process, and at most one event per
    # client this often (a busy hour changes the read model many times a second).
    reporting_live_max_clients: int = Field(default=1000, ge=1)
    reporting_live_min_interval_s: float = Field(default=5.0, ge=0)
    reporting_live_heartbeat_s: float = Field(default=15.0, gt=0)

    @property
    def dev_sign_in_enabled(self) -> bool:
        """The development sign-in (demo identities) exists only outside production."""
        return self.environment != "production"

    @property
    def cookie_secure(self) -> bool:
        return self.environment == "production"
