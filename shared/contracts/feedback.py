"""Integration events of the feedback service (exchange ``feedback.events``).

Privacy: these messages never carry what names or describes a person — no contact details,
no comment, title, content, question or answer text. Dossier ids, unit codes, levels,
criteria scores, statuses, categories, dates and reaction counts only.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from shared.contracts import IntegrationEvent

RatingLevel = Literal["very_satisfied", "satisfied", "dissatisfied"]


class RatingSubmitted(IntegrationEvent):
    """A rating (mức độ hài lòng) of a dossier was accepted: one message for every rating.

    Every accepted rating is announced, including an imported one older than the dossier's
    current rating (``current`` false: it went into the history only). One current rating per
    dossier: the latest ``rated_at`` wins. Scoring keeps every message (keyed by ``dossier_id``
    and ``rating_id``) and counts, for a period, the latest ``rated_at`` before its judging
    instant, so it does not need ``current``.
    """

    routing_key: ClassVar[str] = "feedback.rating-submitted.v1"

    rating_id: str
    dossier_id: str
    unit_code: str | None  # the dossier's unit if the feedback service knows it yet
    level: RatingLevel
    criteria: dict[str, int]
    origin: str  # "citizen" (our form/API) or the importing source, e.g. "national_portal"
    rated_at: datetime
    replaced: bool  # an earlier rating of the dossier was replaced (false when not ``current``)
    previous_level: RatingLevel | None = None
    current: bool = True  # it became the dossier's current rating (false: an older one, history only)


class PetitionChanged(IntegrationEvent):
    """A petition's full non-personal state after a transition (phản ánh, kiến nghị).

    Consumers keep the highest ``version`` per ``petition_id``; every deadline is the end of
    a working day in Vietnam time, on time iff the act happened at or before it.
    """

    routing_key: ClassVar[str] = "feedback.petition-changed.v1"

    petition_id: str
    version: int
    change: str  # receive | refuse | request_info | supplement | transfer | answer | publish | react
    changed_at: datetime
    unit_code: str
    dossier_id: str | None
    category: str
    classification: Literal["tthc", "staff", "other"]  # indicator 5.1
    status: Literal["received", "more_info_requested", "refused", "answered", "published"]
    received_at: datetime  # first receipt: the period the petition belongs to (5.3)
    clock_started_at: datetime  # receipt, latest transfer or additional information
    refuse_due_at: datetime
    info_due_at: datetime
    answer_due_at: datetime
    publish_due_at: datetime | None
    refused_at: datetime | None
    info_requested_at: datetime | None
    answered_at: datetime | None
    published_at: datetime | None
    handled_on_time: bool | None  # refusal or answer within its deadline; None while open
    transfers: int
    likes: int
    dislikes: int
    petitioned_again: bool  # the dossier already had a petition before this one
