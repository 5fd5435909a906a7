"""Request and response bodies of the feedback API (limits enforced here, by pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from services.feedback.domain.categories import CATEGORY_CODES
from shared.text import CONTROL, CONTROL_IN_TEXT, CONTROLS_NAMED, DIRECTION_CONTROLS_NAMED


def _single_line(value: str) -> str:
    """No control characters at all (ingest's rule, shared.text): NUL cannot even be stored
    (PostgreSQL refuses it), C1 ones come from mis-decoded text, direction controls turn lines."""
    if CONTROL.search(value):
        raise ValueError(f"must not contain {CONTROLS_NAMED} or {DIRECTION_CONTROLS_NAMED}")
    return value


def _text(value: str) -> str:
    """Free text (a comment, a petition, an answer) keeps tabs and line breaks, as ingest's free text."""
    if CONTROL_IN_TEXT.search(value):
        raise ValueError(
            f"must not contain {CONTROLS_NAMED} other than tab and line breaks (no U+0000) "
            f"or {DIRECTION_CONTROLS_NAMED}"
        )
    return value


Line = AfterValidator(_single_line)
Text = AfterValidator(_text)

# Lists are paginated; PostgreSQL's OFFSET is a 64-bit integer and a deep offset is a slow scan.
MAX_OFFSET = 1_000_000

Level = Literal["very_satisfied", "satisfied", "dissatisfied"]
DossierId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
UnitCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), Line]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32), Line]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2_000), Text]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200), Line]
Content = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=5_000), Text]
Contact = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Line]
StaffText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5_000), Text]
Origin = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
CriterionId = Annotated[str, StringConstraints(max_length=64), Line]
Name = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]
PetitionIdPath = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9]+$", description="the petition id, e.g. PA7K2M9QX4RT")
]


def _category(value: str) -> str:
    if value not in CATEGORY_CODES:
        raise ValueError(f"must be one of {', '.join(CATEGORY_CODES)}")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a UTC offset")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RatingIn(Strict):
    """A citizen's rating (đánh giá) of a handled dossier, proven by the receipt's rating code."""

    dossier_id: DossierId
    rating_code: Code
    level: Level
    criteria: dict[CriterionId, Annotated[int, Field(ge=1, le=3)]] = Field(default_factory=dict, max_length=32)
    comment: Comment | None = None


class RatingOut(BaseModel):
    rating_id: str
    dossier_id: str
    level: Level
    replaced: bool


class ImportedRating(Strict):
    dossier_id: DossierId
    level: Level
    criteria: dict[CriterionId, Annotated[int, Field(ge=1, le=3)]] = Field(default_factory=dict, max_length=32)
    rated_at: Annotated[datetime, AfterValidator(_aware)]
    origin: Origin


class ImportAnswer(BaseModel):
    accepted: int
    duplicates: int
    held: int = 0  # ratings of dossiers not known yet, applied when they arrive
    rejected: list[dict[str, object]]


class StaffRating(BaseModel):
    rating_id: str
    dossier_id: str
    unit_code: str | None
    level: Level
    criteria: dict[str, int]
    comment: str | None
    origin: str
    rated_at: datetime
    replacements: int


class PetitionIn(Strict):
    """A petition (phản ánh, kiến nghị) to a unit, optionally about one dossier."""

    unit_code: UnitCode
    dossier_id: DossierId | None = None
    category: Annotated[str, AfterValidator(_category)]
    title: Title
    content: Content
    contact: Contact | None = None


class PetitionCreated(BaseModel):
    petition_id: str
    access_code: str


class ReactionIn(Strict):
    access_code: Code
    reaction: Literal["like", "dislike"]


class InformationIn(Strict):
    access_code: Code
    information: Content


class RefuseIn(Strict):
    reason: StaffText


class QuestionIn(Strict):
    question: StaffText


class AnswerIn(Strict):
    answer: StaffText


class TransferIn(Strict):
    to_unit_code: UnitCode


class Deadlines(BaseModel):
    refuse_due_at: datetime
    info_due_at: datetime
    answer_due_at: datetime
    publish_due_at: datetime | None


class CitizenPetition(BaseModel):
    """What the petitioner sees: never staff notes, never the unit's unpublished answer."""

    petition_id: str
    unit_code: str
    category: str
    title: str
    status: str
    received_at: datetime
    deadlines: Deadlines
    question: str | None
    answer: str | None
    published_at: datetime | None
    refused_at: datetime | None
    refusal_reason: str | None
    reaction: str | None


class StaffPetition(BaseModel):
    petition_id: str
    unit_code: str
    dossier_id: str | None
    category: str
    classification: str
    title: str
    content: str
    contact: str | None
    status: str
    received_at: datetime
    clock_started_at: datetime
    deadlines: Deadlines
    refused_at: datetime | None
    refusal_reason: str | None
    info_requested_at: datetime | None
    question: str | None
    supplement: str | None
    answered_at: datetime | None
    answer: str | None
    published_at: datetime | None
    handled_on_time: bool | None
    transfers: int
    likes: int
    dislikes: int
    petitioned_again: bool
    version: int


class PetitionPage(BaseModel):
    total: int
    items: list[StaffPetition]
