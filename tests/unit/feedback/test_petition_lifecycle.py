"""The petition state machine (PAKN) and its working-day deadlines."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.feedback.domain import petition as p
from services.feedback.domain.petition import IllegalTransition, Status
from shared.calendar import VN_TZ, WorkingCalendar

CAL = WorkingCalendar()


def vn(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=VN_TZ)


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=VN_TZ) + timedelta(days=1)


def test_receipt_sets_every_deadline_in_working_days() -> None:
    s = p.receive("P01", vn(2026, 10, 5), CAL)  # Monday
    assert s.status is Status.RECEIVED
    assert s.deadlines.refuse_due_at == end_of(2026, 10, 7)
    assert s.deadlines.info_due_at == end_of(2026, 10, 12)
    assert s.deadlines.answer_due_at == end_of(2026, 10, 26)
    assert s.deadlines.publish_due_at is None
    assert s.version == 1 and s.handled_on_time is None


def test_deadlines_skip_tet_2027() -> None:
    # Tết Đinh Mùi: 4–10 February 2027 are days off (with the weekend in between).
    s = p.receive("P01", vn(2027, 2, 3), CAL)
    assert s.deadlines.refuse_due_at == end_of(2027, 2, 12)
    assert s.deadlines.answer_due_at == end_of(2027, 3, 3)  # 11–12 Feb, then 13 working days


def test_deadlines_skip_national_day() -> None:
    s = p.receive("P01", vn(2026, 8, 28), CAL)  # Friday before the 2 September holiday
    assert s.deadlines.refuse_due_at == end_of(2026, 9, 4)


def test_refuse_on_time_and_late() -> None:
    s = p.receive("P01", vn(2026, 10, 5), CAL)
    on_time = p.refuse(s, vn(2026, 10, 7, 23))
    assert on_time.status is Status.REFUSED and on_time.handled_on_time is True and on_time.version == 2
    late = p.refuse(s, vn(2026, 10, 8, 8))
    assert late.handled_on_time is False


def test_request_info_then_supplement_restarts_the_clock() -> None:
    s = p.receive("P01", vn(2026, 10, 5), CAL)
    asked = p.request_info(s, vn(2026, 10, 6))
    assert asked.status is Status.MORE_INFO_REQUESTED and asked.info_requested_at == vn(2026, 10, 6)
    back = p.supplement(asked, vn(2026, 10, 9), CAL)
    assert back.status is Status.RECEIVED
    assert back.received_at == vn(2026, 10, 5)  # the period it belongs to does not move
    assert back.clock_started_at == vn(2026, 10, 9)
    assert back.deadlines.answer_due_at == end_of(2026, 10, 30)


def test_refuse_after_an_unanswered_question() -> None:
    asked = p.request_info(p.receive("P01", vn(2026, 10, 5), CAL), vn(2026, 10, 6))
    assert p.refuse(asked, vn(2026, 10, 20)).status is Status.REFUSED


def test_transfer_restarts_deadlines_at_the_new_unit() -> None:
    s = p.receive("P01", vn(2026, 10, 5), CAL)
    moved = p.transfer(s, "P02", vn(2026, 10, 7), CAL)
    assert moved.unit_code == "P02" and moved.transfers == 1 and moved.status is Status.RECEIVED
    assert moved.deadlines.answer_due_at == end_of(2026, 10, 28)
    with pytest.raises(ValueError):
        p.transfer(moved, "P02", vn(2026, 10, 8), CAL)


def test_answer_then_publish_with_its_own_deadline() -> None:
    s = p.receive("P01", vn(2026, 10, 5), CAL)
    answered = p.answer(s, vn(2026, 10, 23), CAL)  # Friday
    assert answered.status is Status.ANSWERED and answered.handled_on_time is True
    assert answered.deadlines.publish_due_at == end_of(2026, 10, 27)
    published = p.publish(answered, vn(2026, 10, 27, 16))
    assert published.status is Status.PUBLISHED and published.published_on_time is True


def test_late_answer_is_not_on_time() -> None:
    s = p.receive("P01", vn(2026, 10, 5), CAL)
    assert p.answer(s, vn(2026, 10, 27), CAL).handled_on_time is False


def test_reactions_one_per_petition_and_changeable() -> None:
    s = p.publish(p.answer(p.receive("P01", vn(2026, 10, 5), CAL), vn(2026, 10, 6), CAL), vn(2026, 10, 7))
    liked = p.react(s, "like")
    assert (liked.likes, liked.dislikes) == (1, 0)
    assert p.react(liked, "like") is liked  # same again: no change, no new version
    disliked = p.react(liked, "dislike")
    assert (disliked.likes, disliked.dislikes) == (0, 1) and disliked.version == liked.version + 1


@pytest.mark.parametrize(
    ("status_path", "action"),
    [
        ([], lambda s: p.publish(s, vn(2026, 10, 6))),
        ([], lambda s: p.react(s, "like")),
        ([], lambda s: p.supplement(s, vn(2026, 10, 6), CAL)),
        (["refuse"], lambda s: p.answer(s, vn(2026, 10, 6), CAL)),
        (["refuse"], lambda s: p.transfer(s, "P02", vn(2026, 10, 6), CAL)),
        (["answer"], lambda s: p.refuse(s, vn(2026, 10, 6))),
        (["answer"], lambda s: p.answer(s, vn(2026, 10, 6), CAL)),
        (["answer", "publish"], lambda s: p.request_info(s, vn(2026, 10, 6))),
        (["request_info"], lambda s: p.answer(s, vn(2026, 10, 6), CAL)),
    ],
)
def test_illegal_transitions(status_path: list[str], action) -> None:
    s = p.receive("P01", vn(2026, 10, 5), CAL)
    steps = {
        "refuse": lambda s: p.refuse(s, vn(2026, 10, 5, 11)),
        "answer": lambda s: p.answer(s, vn(2026, 10, 5, 11), CAL),
        "publish": lambda s: p.publish(s, vn(2026, 10, 5, 12)),
        "request_info": lambda s: p.request_info(s, vn(2026, 10, 5, 11)),
    }
    for step in status_path:
        s = steps[step](s)
    with pytest.raises(IllegalTransition, match="cannot"):
        action(s)
