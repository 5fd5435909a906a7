"""Scoring settings (env prefix ``SQI_``; scoring-specific ones ``SQI_SCORING_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings


class ScoringSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SQI_", extra="ignore")

    # The refresher recomputes dirty periods (kỳ cần tính lại) at most this often. A refresh reads
    # stored counters (its cost no longer grows with the period's dossiers), so a short tick buys
    # freshness: an event is in the scores a tick plus one judging and recomputation after it.
    scoring_refresh_seconds: float = Field(default=0.25, gt=0)
    # Quarters and years (kỳ quý, năm) of the running year are recomputed at most this often by the
    # live refresher: while events stream in, each refresh re-scores most units of every dirty
    # period, and the derived periods would take most of the worker's CPU from the month (whose
    # freshness is the target). The refresh cycle under a stream is its recomputation time divided
    # by the share of time judging leaves free, so recomputing three periods per cycle instead of
    # one made it up to 3× longer (5 s: every cycle; docs/performance.md, session 5). 0: as often
    # as the month.
    scoring_derived_refresh_seconds: float = Field(default=15.0, ge=0)
    # Judging lanes (luồng chấm hồ sơ): chunks of due dossiers judged at once, each on its own
    # connection (the refresher's judging step; application.refresher.judge_pending). A chunk
    # waits on PostgreSQL most of its time, so a second lane overlaps one chunk's statements with
    # another's thread: 6–10 % more dossiers a second under a stream (docs/performance.md,
    # session 10); a third made freshness at 2,000 events/s ≈ 20 % better in five runs against
    # five (session 16). Each lane holds a connection of the pool while it judges.
    scoring_judging_lanes: int = Field(default=3, ge=1, le=4)
