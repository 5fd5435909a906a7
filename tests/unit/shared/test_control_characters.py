"""One control-character rule for ingest and feedback (shared.text): C0, DEL, C1 (U+0080–U+009F)
and the direction controls are refused; free text keeps tab and line breaks in both services."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.feedback.api import schemas as feedback
from services.ingest.domain import reasons
from services.ingest.domain.validation import Rejection, ValidEvent, validate_record
from shared.text import CONTROL, CONTROL_IN_TEXT, DIRECTION_CONTROLS

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
# U+0080 (the first), U+0085 (NEL, a "next line" of mis-decoded text), U+009B (CSI, a terminal's
# escape), U+009F (the last).
C1 = ["\x80", "\x85", "\x9b", "\x9f"]
PETITION = {
    "unit_code": "P01",
    "category": "progress",
    "title": "Chậm trả kết quả",
    "content": "Hồ sơ chậm trả kết quả quá 5 ngày",
    "contact": "0912 345 678",
}


def test_the_shared_rule_is_c0_del_c1_and_the_direction_controls() -> None:
    refused = {chr(i) for i in range(0x2100) if CONTROL.search(chr(i))}
    assert refused == {chr(i) for i in [*range(0x20), *range(0x7F, 0xA0)]} | set(DIRECTION_CONTROLS)
    in_text = {chr(i) for i in range(0x2100) if CONTROL_IN_TEXT.search(chr(i))}
    assert in_text == refused - {"\t", "\n", "\r"}


@pytest.mark.parametrize("control", C1)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("content", "Hồ sơ chậm trả{}\nkết quả quá 5 ngày"),
        ("title", "Chậm trả{}kết quả"),
        ("contact", "0912{}345 678"),
        ("unit_code", "P0{}1"),
    ],
)
def test_feedback_refuses_c1_controls_in_a_petition(control: str, field: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        feedback.PetitionIn.model_validate({**PETITION, field: value.format(control)})
    [error] = refused.value.errors()
    assert error["loc"] == (field,) and "U+007F–U+009F" in error["msg"], error


@pytest.mark.parametrize("control", C1)
def test_feedback_refuses_c1_controls_in_ratings_and_staff_text(control: str) -> None:
    rating = {"dossier_id": "HS-1", "rating_code": "ABCDEFGH", "level": "satisfied"}
    for model, body, loc in (
        (feedback.RatingIn, {**rating, "comment": f"tốt{control}quá"}, ("comment",)),
        (feedback.RatingIn, {**rating, "criteria": {f"c{control}1": 2}}, ("criteria", f"c{control}1", "[key]")),
        (feedback.RatingIn, {**rating, "rating_code": f"ABC{control}DEFG"}, ("rating_code",)),
        (feedback.AnswerIn, {"answer": f"Đã xử lý{control} xong"}, ("answer",)),
        (feedback.InformationIn, {"access_code": "A1", "information": f"Bổ sung{control} đủ"}, ("information",)),
        (feedback.TransferIn, {"to_unit_code": f"P{control}02"}, ("to_unit_code",)),
    ):
        with pytest.raises(ValidationError) as refused:
            model.model_validate(body)
        assert [e["loc"] for e in refused.value.errors()] == [loc], (model, body)


def test_feedback_free_text_keeps_tab_and_line_breaks_as_ingest_does() -> None:
    text = "Dòng một\r\nDòng hai\n\tthụt lề"
    assert feedback.PetitionIn.model_validate({**PETITION, "content": text}).content == text
    assert feedback.AnswerIn.model_validate({"answer": text}).answer == text
    with pytest.raises(ValidationError):  # a single-line field keeps none
        feedback.PetitionIn.model_validate({**PETITION, "title": "Chậm trả\nkết quả"})


GOOD: dict[str, Any] = {
    "event_id": "e-1",
    "type": "dossier.supplement_requested",
    "occurred_at": "2026-10-05T08:31:00+07:00",
    "source": "tms",
    "data": {"dossier_id": "HS-1", "reason": "Thiếu giấy tờ:\n\t- bản sao", "officer_id": "O-1"},
}


@pytest.mark.parametrize("control", C1)
@pytest.mark.parametrize("name", ["reason", "officer_id"])
def test_ingest_still_refuses_c1_controls_in_names_and_free_text(control: str, name: str) -> None:
    assert isinstance(validate_record(0, GOOD, now=NOW, future_tolerance=timedelta(days=1)), ValidEvent)
    record = copy.deepcopy(GOOD)
    record["data"][name] += control + "x"
    rejected = validate_record(0, record, now=NOW, future_tolerance=timedelta(days=1))
    assert isinstance(rejected, Rejection)
    assert rejected.as_json()["errors"] == [{"field": f"data.{name}", "reason": reasons.CONTROL.text}]
