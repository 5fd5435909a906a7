"""Petitions (phản ánh, kiến nghị — PAKN) and ratings (đánh giá mức độ hài lòng) for G5.

They come from the feedback service as events (names proposed here, the feedback service owns
them): ``petition.received`` (unit_code, dossier_id?, category), ``petition.transferred``
(to_unit_code), ``petition.refused``, ``petition.more_info_requested``, ``petition.answered``,
``petition.published``, ``petition.reacted`` (reaction like/dislike), ``petition.repeated``
(petitioned again); ``rating.submitted`` (dossier_id, level, criteria). Folded order-independently
like dossiers.

Deadlines, in working days from receipt or from the latest transfer (each the end of that day):
refuse 2, ask for more information 5, answer ready 15, publish 2 after the answer is ready. A
petition is on time when every step taken met its deadline and, still open, no deadline has
passed at the judging instant. Finished = refused, or answered (the answer being ready); an
answered petition must also be published within 2 working days of the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.calendar import WorkingCalendar

from .events import DomainEvent, dedupe_and_sort
from .period import Period

REFUSE_WD = 2
MORE_INFO_WD = 5
ANSWER_WD = 15
PUBLISH_WD = 2


@dataclass(frozen=True, slots=True)
class PetitionFacts:
    """A petition as SQI scores it."""

    petition_id: str
    unit_code: str
    dossier_id: str | None
    category: str | None
    received_at: datetime
    last_transferred_at: datetime | None = None
    status: str = "received"  # received / refused / more_info_requested / answered / published
    more_info_requested_at: datetime | None = None
    answered_at: datetime | None = None
    refused_at: datetime | None = None
    published_at: datetime | None = None
    likes: int = 0
    dislikes: int = 0
    petitioned_again: bool = False

    @property
    def ended_at(self) -> datetime | None:
        """When its handling ended (refused, else answered): a petition that ended before a
        period began is not handled in it (:func:`evaluate_petition`), so readers may skip it."""
        return self.refused_at or self.answered_at


@dataclass(frozen=True, slots=True)
class RatingFacts:
    """A citizen's rating of a handled dossier (the latest one counts; history kept elsewhere)."""

    dossier_id: str
    level: str  # very_satisfied / satisfied / dissatisfied
    criteria: dict[str, int]
    rated_at: datetime


@dataclass(frozen=True, slots=True)
class PetitionVerdict:
    petition_id: str
    unit_code: str
    dossier_id: str | None
    received_in_period: bool
    handled_in_period: bool
    classified: bool
    on_time: bool
    satisfied: bool  # 5.3: not overdue, not more dislikes than likes, not petitioned again
    shortfall: str | None


def fold_petition(petition_id: str, events: Iterable[DomainEvent]) -> PetitionFacts | None:
    """Fold a petition's events; None while its ``petition.received`` is unknown."""
    evs = [e for e in dedupe_and_sort(events) if e.data.get("petition_id", petition_id) == petition_id]
    rec = next((e for e in evs if e.type == "petition.received"), None)
    if rec is None:
        return None
    unit = str(rec.data.get("unit_code", ""))
    status = "received"
    transferred: datetime | None = None
    more_info: datetime | None = None
    answered: datetime | None = None
    refused: datetime | None = None
    published: datetime | None = None
    likes = dislikes = 0
    again = False
    for e in evs:
        t = max(e.occurred_at, rec.occurred_at)
        # Refusal and the answer close the petition: later steps cannot reopen it.
        closed = refused is not None or answered is not None
        if e.type == "petition.transferred" and not closed:
            unit, transferred = str(e.data.get("to_unit_code")), t
        elif e.type == "petition.refused" and not closed:
            refused, status = t, "refused"
        elif e.type == "petition.more_info_requested" and not closed:
            more_info = more_info or t
            status = "more_info_requested"
        elif e.type == "petition.answered" and not closed:
            answered, status = t, "answered"
        elif e.type == "petition.published" and answered is not None and published is None:
            published, status = t, "published"
        elif e.type == "petition.reacted":
            like = e.data.get("reaction") == "like"
            likes, dislikes = likes + like, dislikes + (not like)
        elif e.type == "petition.repeated":
            again = True
    return PetitionFacts(
        petition_id=petition_id,
        unit_code=unit,
        dossier_id=rec.data.get("dossier_id"),
        category=rec.data.get("category"),
        received_at=rec.occurred_at,
        last_transferred_at=transferred,
        status=status,
        more_info_requested_at=more_info,
        answered_at=answered,
        refused_at=refused,
        published_at=published,
        likes=likes,
        dislikes=dislikes,
        petitioned_again=again,
    )


def fold_ratings(events: Iterable[DomainEvent]) -> dict[str, RatingFacts]:
    """The latest ``rating.submitted`` per dossier (a second rating replaces the first)."""
    out: dict[str, RatingFacts] = {}
    for e in dedupe_and_sort(e for e in events if e.type == "rating.submitted"):
        d = e.data
        out[str(d["dossier_id"])] = RatingFacts(
            str(d["dossier_id"]), str(d.get("level", "")), dict(d.get("criteria") or {}), e.occurred_at
        )
    return out


def latest_rating(ratings: Iterable[RatingFacts], judged_at: datetime) -> dict[str, RatingFacts]:
    """Per dossier, the latest rating given before ``judged_at``."""
    out: dict[str, RatingFacts] = {}
    for r in sorted(ratings, key=lambda r: (r.rated_at, r.level)):
        if r.rated_at < judged_at:
            out[r.dossier_id] = r
    return out


RATED_DISSATISFIED = "bị đánh giá không hài lòng / rated dissatisfied"
NAMED_IN_PETITION = "bị phản ánh, kiến nghị / named in a petition"


@dataclass(frozen=True, slots=True)
class DossierFeedback:
    """What citizens said about one dossier, as 5.4 reads it (ý kiến phản hồi về hồ sơ): every
    rating of it, and when each petition naming it (of any unit) was received.

    Part of the dossier's verdict: judging reads it with the dossier's events, so a rating or a
    petition re-judges the dossier like a new event, and 5.4 is a stored counter like the others.
    """

    ratings: tuple[RatingFacts, ...] = ()
    petitioned_at: tuple[datetime, ...] = ()

    def exception(self, judged_at: datetime) -> str | None:
        """Why 5.4 does not count the dossier as satisfied at ``judged_at`` whatever its clock
        (its :func:`latest_rating` before then is dissatisfied, or a petition received before
        then names it); None when nothing does."""
        if self.ratings:
            latest = latest_rating(self.ratings, judged_at)
            if any(r.level == "dissatisfied" for r in latest.values()):
                return RATED_DISSATISFIED
        if any(t < judged_at for t in self.petitioned_at):
            return NAMED_IN_PETITION
        return None

    def times(self) -> list[datetime]:
        """Every instant whose becoming "known" can change :meth:`exception`."""
        return [r.rated_at for r in self.ratings] + list(self.petitioned_at)


NO_FEEDBACK = DossierFeedback()


def feedback_by_dossier(
    ratings: Iterable[RatingFacts], petitioned: Iterable[tuple[str, datetime]]
) -> dict[str, DossierFeedback]:
    """Per dossier its :class:`DossierFeedback`: ``ratings`` of any dossiers, ``petitioned``
    (dossier id, petition received at) pairs."""
    rated: dict[str, list[RatingFacts]] = {}
    for r in ratings:
        rated.setdefault(r.dossier_id, []).append(r)
    named: dict[str, list[datetime]] = {}
    for dossier_id, received_at in petitioned:
        if dossier_id:
            named.setdefault(dossier_id, []).append(received_at)
    return {
        d: DossierFeedback(tuple(rated.get(d, ())), tuple(sorted(named.get(d, ()))))
        for d in rated.keys() | named.keys()
    }


def evaluate_petition(
    p: PetitionFacts, period: Period, judged_at: datetime, calendar: WorkingCalendar
) -> PetitionVerdict:
    """Judge a petition for ``period`` as of ``judged_at``."""

    def known(t: datetime | None) -> datetime | None:
        return t if t is not None and t < judged_at else None

    base = known(p.last_transferred_at) or p.received_at
    refused, answered = known(p.refused_at), known(p.answered_at)
    more_info, published = known(p.more_info_requested_at), known(p.published_at)
    end = refused or answered
    received_in = period.start <= p.received_at < period.end and p.received_at < judged_at
    handled = received_in or (p.received_at < period.start and (end is None or end >= period.start))
    shortfall: str | None = None
    if refused is not None and refused > calendar.due_after(base, REFUSE_WD):
        shortfall = "từ chối quá 2 ngày làm việc / refused after 2 working days"
    elif more_info is not None and more_info > calendar.due_after(base, MORE_INFO_WD):
        shortfall = "yêu cầu bổ sung thông tin quá 5 ngày / more information asked after 5 working days"
    elif refused is None and (answered or judged_at) > calendar.due_after(base, ANSWER_WD):
        shortfall = "trả lời quá 15 ngày làm việc / answer ready after 15 working days"
    elif answered is not None and (published or judged_at) > calendar.due_after(answered, PUBLISH_WD):
        shortfall = "công khai trả lời quá 2 ngày / answer published after 2 working days"
    on_time = shortfall is None
    satisfied = on_time and p.dislikes <= p.likes and not p.petitioned_again
    if on_time and not satisfied:
        shortfall = (
            "bị phản ánh lại / petitioned again"
            if p.petitioned_again
            else "nhiều lượt không đồng tình / more dislikes than likes"
        )
    return PetitionVerdict(
        petition_id=p.petition_id,
        unit_code=p.unit_code,
        dossier_id=p.dossier_id,
        received_in_period=received_in,
        handled_in_period=handled,
        classified=bool(p.category),
        on_time=on_time,
        satisfied=satisfied,
        shortfall=shortfall,
    )
