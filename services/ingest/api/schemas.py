"""Request and response bodies of the ingest API (beyond the events batch, parsed by hand)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EventError(BaseModel):
    field: str
    reason: str


class RejectedEvent(BaseModel):
    index: int
    event_id: str | None
    errors: list[EventError]


class IngestAnswer(BaseModel):
    """What POST /api/v1/events answers (api.md, contract)."""

    accepted: int
    duplicates: int
    rejected: list[RejectedEvent]
    rating_codes: dict[str, str] = Field(description="rating code per newly received dossier")


class RatingCodeAnswer(BaseModel):
    dossier_id: str
    rating_code: str


class UnitIn(BaseModel):
    """A unit (cơ quan, đơn vị) to create or change."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    level: Literal["central", "province", "local"]
    parent_code: str | None = Field(default=None, max_length=64)
    valid_from: date | None = None
    valid_to: date | None = None
    successor_code: str | None = Field(default=None, max_length=64)


class UnitOut(UnitIn):
    model_config = ConfigDict(extra="ignore")

    code: str
    merged_from: str | None = None


class FeedStatus(BaseModel):
    source: str
    last_event_at: datetime | None
    last_request_at: datetime | None
    events_today: int
    duplicates_today: int
    rejected_today: int
    top_rejection_reasons: list[dict[str, object]]


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consumer: str = Field(pattern=r"^[a-z][a-z0-9.-]{1,80}$")
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


class ReplayOut(BaseModel):
    """A replay job: the ingest worker streams the log to the consumer; follow it by its id."""

    replay_id: str
    consumer: str
    status: Literal["pending", "running", "done", "failed"]
    events: int = Field(description="events queued so far")
    batches: int = Field(description="messages queued so far")
    error: str | None = None
