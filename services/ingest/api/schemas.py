"""Request and response bodies of the ingest API (beyond the events batch, parsed by hand)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.ingest.domain import reasons
from shared.text import CONTROL

_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _sane_instant(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("must carry a UTC offset")
    if not _EARLIEST <= value <= _LATEST:
        raise ValueError("must lie between 2000 and 2100")
    return value


def _plain(value: str | None) -> str | None:
    """No control characters in names and codes (PostgreSQL cannot even store NUL) nor direction
    controls: the events' rule (shared.text) and reason, one for the whole service."""
    if value is not None and CONTROL.search(value):
        raise ValueError(reasons.CONTROL.text)
    return value


def _sane_date(value: date | None) -> date | None:
    if value is not None and not date(2000, 1, 1) <= value <= date(2100, 1, 1):
        raise ValueError("must lie between 2000 and 2100")
    return value


Instant = Annotated[datetime | None, AfterValidator(_sane_instant)]
Day = Annotated[date | None, AfterValidator(_sane_date)]
Name = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_plain)]
Code = Annotated[str | None, Field(min_length=1, max_length=64), AfterValidator(_plain)]


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
    rating_codes: dict[str, str] = Field(description="rating code per dossier received in the request, new or resent")


class RatingCodeAnswer(BaseModel):
    dossier_id: str
    rating_code: str


class UnitIn(BaseModel):
    """A unit (cơ quan, đơn vị) to create or change."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    level: Literal["central", "province", "local"]
    parent_code: Code = None
    valid_from: Day = None
    valid_to: Day = None
    successor_code: Code = None


class UnitOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    level: Literal["central", "province", "local"]
    parent_code: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    successor_code: str | None = None
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
    occurred_from: Instant = None
    occurred_to: Instant = None


class ReplayOut(BaseModel):
    """A replay job: the ingest worker streams the log to the consumer; follow it by its id."""

    replay_id: str
    consumer: str
    status: Literal["pending", "running", "done", "failed"]
    events: int = Field(description="events queued so far")
    batches: int = Field(description="messages queued so far")
    error: str | None = None
