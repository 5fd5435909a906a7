"""Petitions (phản ánh, kiến nghị — PAKN): the lifecycle and its working-day deadlines.

received ──refuse──▶ refused (terminal)
   │  ├─request_info──▶ more_info_requested ──supplement──▶ received (the clock restarts)
   │  ├─transfer──▶ received at another unit (the clock restarts)
   │  └─answer──▶ answered ──publish──▶ published (citizens react like/dislike)

Deadlines (methodology.md, group 5), in working days from the clock start — receipt, the
latest transfer or the citizen's additional information: refuse 2, ask for more information
5, answer ready 15; publish 2 after the answer is ready. A deadline is the end of that working
day (``WorkingCalendar.due_after``); on time iff done at or before it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from shared.calendar import WorkingCalendar

REFUSE_WD = 2
REQUEST_INFO_WD = 5
ANSWER_WD = 15
PUBLISH_WD = 2


class Status(StrEnum):
    RECEIVED = "received"
    MORE_INFO_REQUESTED = "more_info_requested"
    REFUSED = "refused"
    ANSWERED = "answered"
    PUBLISHED = "published"


class Action(StrEnum):
    RECEIVE = "receive"
    REFUSE = "refuse"
    REQUEST_INFO = "request_info"
    SUPPLEMENT = "supplement"
    TRANSFER = "transfer"
    ANSWER = "answer"
    PUBLISH = "publish"
    REACT = "react"


# Which actions each status allows: everything else is an illegal transition (409).
ALLOWED: dict[Status, frozenset[Action]] = {
    Status.RECEIVED: frozenset({Action.REFUSE, Action.REQUEST_INFO, Action.TRANSFER, Action.ANSWER}),
    # A citizen who never answers the question can still be refused.
    Status.MORE_INFO_REQUESTED: frozenset({Action.SUPPLEMENT, Action.REFUSE, Action.TRANSFER}),
    Status.ANSWERED: frozenset({Action.PUBLISH}),
    Status.PUBLISHED: frozenset({Action.REACT}),
    Status.REFUSED: frozenset(),
}


class IllegalTransition(Exception):
    """The action does not apply to the petition's current status."""

    def __init__(self, action: Action, status: Status) -> None:
        super().__init__(f"cannot {action.value.replace('_', ' ')} a petition that is {status.value.replace('_', ' ')}")
        self.action = action
        self.status = status


@dataclass(frozen=True)
class Deadlines:
    refuse_due_at: datetime
    info_due_at: datetime
    answer_due_at: datetime
    publish_due_at: datetime | None = None


def deadlines_from(clock_start: datetime, calendar: WorkingCalendar) -> Deadlines:
    return Deadlines(
        refuse_due_at=calendar.due_after(clock_start, REFUSE_WD),
        info_due_at=calendar.due_after(clock_start, REQUEST_INFO_WD),
        answer_due_at=calendar.due_after(clock_start, ANSWER_WD),
    )


@dataclass(frozen=True)
class PetitionState:
    """Everything about a petition that is not personal: what events carry."""

    unit_code: str
    status: Status
    received_at: datetime
    clock_started_at: datetime
    deadlines: Deadlines
    refused_at: datetime | None = None
    info_requested_at: datetime | None = None
    answered_at: datetime | None = None
    published_at: datetime | None = None
    transfers: int = 0
    reaction: str | None = None  # like | dislike: one per petition, changeable
    version: int = 1

    @property
    def handled_at(self) -> datetime | None:
        """When the unit finished with it: the answer being ready, or the refusal."""
        return self.refused_at or self.answered_at

    @property
    def handled_on_time(self) -> bool | None:
        """None while open; else whether the refusal or answer met its deadline."""
        if self.refused_at is not None:
            return self.refused_at <= self.deadlines.refuse_due_at
        if self.answered_at is not None:
            return self.answered_at <= self.deadlines.answer_due_at
        return None

    @property
    def published_on_time(self) -> bool | None:
        if self.published_at is None or self.deadlines.publish_due_at is None:
            return None
        return self.published_at <= self.deadlines.publish_due_at

    @property
    def likes(self) -> int:
        return 1 if self.reaction == "like" else 0

    @property
    def dislikes(self) -> int:
        return 1 if self.reaction == "dislike" else 0


def receive(unit_code: str, at: datetime, calendar: WorkingCalendar) -> PetitionState:
    return PetitionState(
        unit_code=unit_code,
        status=Status.RECEIVED,
        received_at=at,
        clock_started_at=at,
        deadlines=deadlines_from(at, calendar),
    )


def _check(state: PetitionState, action: Action) -> None:
    if action not in ALLOWED[state.status]:
        raise IllegalTransition(action, state.status)


def _next(state: PetitionState, **changes: object) -> PetitionState:
    return replace(state, version=state.version + 1, **changes)  # type: ignore[arg-type]


def refuse(state: PetitionState, at: datetime) -> PetitionState:
    _check(state, Action.REFUSE)
    return _next(state, status=Status.REFUSED, refused_at=at)


def request_info(state: PetitionState, at: datetime) -> PetitionState:
    _check(state, Action.REQUEST_INFO)
    return _next(state, status=Status.MORE_INFO_REQUESTED, info_requested_at=at)


def supplement(state: PetitionState, at: datetime, calendar: WorkingCalendar) -> PetitionState:
    """The citizen answered the question: received again, every deadline restarts from now."""
    _check(state, Action.SUPPLEMENT)
    return _next(state, status=Status.RECEIVED, clock_started_at=at, deadlines=deadlines_from(at, calendar))


def transfer(state: PetitionState, to_unit_code: str, at: datetime, calendar: WorkingCalendar) -> PetitionState:
    """Handed to another unit, which now answers for it with fresh deadlines."""
    _check(state, Action.TRANSFER)
    if to_unit_code == state.unit_code:
        raise ValueError("the petition is already at this unit")
    return _next(
        state,
        status=Status.RECEIVED,
        unit_code=to_unit_code,
        clock_started_at=at,
        deadlines=deadlines_from(at, calendar),
        transfers=state.transfers + 1,
        info_requested_at=None,
    )


def answer(state: PetitionState, at: datetime, calendar: WorkingCalendar) -> PetitionState:
    _check(state, Action.ANSWER)
    deadlines = replace(state.deadlines, publish_due_at=calendar.due_after(at, PUBLISH_WD))
    return _next(state, status=Status.ANSWERED, answered_at=at, deadlines=deadlines)


def publish(state: PetitionState, at: datetime) -> PetitionState:
    _check(state, Action.PUBLISH)
    return _next(state, status=Status.PUBLISHED, published_at=at)


def react(state: PetitionState, reaction: str) -> PetitionState:
    _check(state, Action.REACT)
    if reaction not in ("like", "dislike"):
        raise ValueError("reaction must be like or dislike")
    if reaction == state.reaction:
        return state  # the same reaction again changes nothing
    return _next(state, reaction=reaction)
