from datetime import date, datetime

from services.scoring.domain import DomainEvent, DossierFacts, evaluate, fold_dossier, parse_period
from shared.calendar import VN_TZ, end_of_day

from .helpers import CAL, PROCS, completed, ev, received, t

OCT = parse_period("2026-10")
NOV = parse_period("2026-11")


def fold(*events: DomainEvent) -> DossierFacts:
    facts = fold_dossier("D1", events, PROCS, CAL)
    assert facts is not None
    return facts


def test_no_receipt_yet_gives_none() -> None:
    assert fold_dossier("D1", [completed(t(10, 6))], PROCS, CAL) is None


def test_on_time_and_due_computed_from_working_days() -> None:
    # Friday 2 Oct + 3 working days = Wed 7 Oct; due at the end of that day.
    f = fold(received(t(10, 2, 16)), completed(t(10, 7, 23, 59)))
    assert f.clock is not None and f.clock.due_at == datetime(2026, 10, 8, tzinfo=VN_TZ)
    v = evaluate(f, OCT, OCT.end, CAL)
    assert v.received_in_period and v.handled_in_period and v.on_time and not v.shortfalls.get("2.1")
    assert v.handling_working_days == 3


def test_overdue_reason_in_working_days() -> None:
    f = fold(received(t(10, 2, 16)), completed(t(10, 12, 10)))  # Mon 12 Oct: 3 wd late (8, 9, 12)
    v = evaluate(f, OCT, OCT.end, CAL)
    assert v.overdue and v.working_days_late == 3
    assert v.shortfalls["2.1"] == "quá hạn 3 ngày làm việc / overdue by 3 working days"


def test_clock_pauses_during_supplement() -> None:
    # Due Wed 7 Oct; paused Mon 5 → Thu 8 (3 working days) → due Mon 12 Oct end.
    f = fold(
        received(t(10, 2, 16)),
        ev("supplement_requested", t(10, 5), reason="thiếu tờ khai", officer_id="O3"),
        ev("supplement_received", t(10, 8), due_at=None),
        completed(t(10, 12, 15)),
    )
    assert f.clock is not None
    assert f.clock.paused_working_days == 3 and f.clock.supplement_count == 1
    assert f.clock.due_at == end_of_day(date(2026, 10, 12))
    assert evaluate(f, OCT, OCT.end, CAL).on_time


def test_supplement_received_with_new_due_at_replaces_it() -> None:
    new_due = datetime(2026, 10, 20, 17, 0, tzinfo=VN_TZ)
    f = fold(
        received(t(10, 2, 16)),
        ev("supplement_requested", t(10, 5)),
        ev("supplement_received", t(10, 8), due_at=new_due.isoformat()),
        completed(t(10, 20, 16)),
    )
    assert f.clock is not None and f.clock.due_at == new_due
    assert evaluate(f, OCT, OCT.end, CAL).on_time
    late = fold(*[e for e in f_events(new_due)], completed(t(10, 20, 17, 1)))
    assert not evaluate(late, OCT, OCT.end, CAL).on_time


def f_events(new_due: datetime) -> list[DomainEvent]:
    return [
        received(t(10, 2, 16)),
        ev("supplement_requested", t(10, 5)),
        ev("supplement_received", t(10, 8), due_at=new_due.isoformat()),
    ]


def test_second_supplement_request_makes_it_overdue() -> None:
    f = fold(
        received(t(10, 2, 16)),
        ev("supplement_requested", t(10, 5)),
        ev("supplement_received", t(10, 6)),
        ev("supplement_requested", t(10, 6, 15)),
        ev("supplement_received", t(10, 7)),
        completed(t(10, 7, 10)),
    )
    v = evaluate(f, OCT, OCT.end, CAL)
    assert v.overdue and "lần thứ hai" in v.shortfalls["2.1"]


def test_unanswered_supplement_ends_clock_at_request() -> None:
    f = fold(received(t(10, 2, 16)), ev("supplement_requested", t(10, 6)))
    v = evaluate(f, OCT, OCT.end, CAL)
    assert v.finished and v.on_time and v.clock_end_at == t(10, 6)
    # Judged at the request: not carried into November as an open dossier.
    assert not evaluate(f, NOV, NOV.end, CAL).handled_in_period
    # Requested after the due time: overdue for good.
    late = fold(received(t(10, 2, 16)), ev("supplement_requested", t(10, 9)))
    assert evaluate(late, OCT, OCT.end, CAL).overdue


def test_supplement_after_due_cannot_rescue() -> None:
    f = fold(
        received(t(10, 2, 16)),  # due end of 7 Oct
        ev("supplement_requested", t(10, 9)),
        ev("supplement_received", t(10, 20)),
        completed(t(10, 21)),
    )
    assert evaluate(f, OCT, OCT.end, CAL).overdue


def test_transfer_changes_unit_but_not_the_clock() -> None:
    f = fold(
        received(t(10, 2, 16), unit_code="U1"),
        ev("transferred", t(10, 9), to_unit_code="U2", officer_id="O9"),  # after due
        completed(t(10, 12), officer_id="O7"),
        ev("transferred", t(10, 13), to_unit_code="U3"),  # after terminal: ignored
    )
    v = evaluate(f, OCT, OCT.end, CAL)
    assert f.unit_code == "U2" and v.unit_code == "U2" and v.overdue
    assert v.receiving_officer_id == "O1" and v.responsible_officer_id == "O7"
    assert ("dossier.transferred", "O9") in v.officer_ids
    # As of a moment before the transfer the dossier belonged to U1.
    assert f.unit_as_of(t(10, 5)) == "U1"


def test_withdrawal_is_terminal() -> None:
    f = fold(received(t(10, 2, 16)), ev("withdrawn", t(10, 5)), completed(t(10, 20)))
    assert f.terminal_kind == "withdrawn" and f.finished_at == t(10, 5)
    v = evaluate(f, OCT, OCT.end, CAL)
    assert v.on_time and not v.completed


def test_completed_then_reopened_attempts_change_nothing() -> None:
    base = [received(t(10, 2, 16)), completed(t(10, 12, 10))]  # overdue
    f = fold(
        *base,
        received(t(10, 13), due_at=datetime(2026, 12, 1, tzinfo=VN_TZ).isoformat()),
        ev("supplement_requested", t(10, 13, 10)),
        ev("supplement_received", t(10, 14), due_at=datetime(2026, 12, 1, tzinfo=VN_TZ).isoformat()),
        completed(t(10, 14, 10)),
        ev("withdrawn", t(10, 15)),
        ev("synced", t(10, 16)),
        ev("components_digitized", t(10, 16), components=2, reused=1, from_personal_store=0),
    )
    assert f.finished_at == t(10, 12, 10) and f.terminal_kind == "completed"
    assert f.steps == () and f.received_at == t(10, 2, 16)
    v = evaluate(f, OCT, OCT.end, CAL)
    assert v.overdue and v.synced and v.digitised and v.reused  # facts still count after terminal


def test_tet_2027_spans_the_due_date() -> None:
    # Received Wed 3 Feb 2027, 3 working days: Tết is 4–10 Feb, so 11, 12, 15 → due end of 15 Feb.
    f = fold(received(t(2, 3, year=2027)), completed(t(2, 15, 16, year=2027)))
    assert f.clock is not None and f.clock.due_at == end_of_day(date(2027, 2, 15))
    assert evaluate(f, parse_period("2027-02"), parse_period("2027-02").end, CAL).on_time


def test_answered_on_receipt_procedure() -> None:
    same_day = fold_dossier("D1", [received(t(10, 5, 9), procedure_code="P0"), completed(t(10, 5, 17))], PROCS, CAL)
    next_day = fold_dossier("D1", [received(t(10, 5, 9), procedure_code="P0"), completed(t(10, 6, 8))], PROCS, CAL)
    assert same_day and next_day
    assert evaluate(same_day, OCT, OCT.end, CAL).on_time
    assert evaluate(next_day, OCT, OCT.end, CAL).overdue


def test_explicit_due_at_used_as_given() -> None:
    due = datetime(2026, 10, 5, 17, 0, tzinfo=VN_TZ)
    on = fold(received(t(10, 2, 16), due_at=due.isoformat()), completed(due))
    off = fold(received(t(10, 2, 16), due_at=due.isoformat()), completed(t(10, 5, 17, 1)))
    assert evaluate(on, OCT, OCT.end, CAL).on_time
    assert evaluate(off, OCT, OCT.end, CAL).overdue


def test_running_period_and_open_dossiers() -> None:
    f = fold(received(t(10, 26, 9)), completed(t(11, 3, 10)))  # due end of Thu 29 Oct
    # Running: judged now (28 Oct) → open and not yet due → on time, and the completion is unknown yet.
    v_now = evaluate(f, OCT, OCT.judged_at(t(10, 28)), CAL)
    assert v_now.on_time and not v_now.finished
    # October closed: open at its end and past due → overdue.
    assert evaluate(f, OCT, OCT.end, CAL).overdue
    # November: carried over (open at its start), finished late.
    v_nov = evaluate(f, NOV, NOV.end, CAL)
    assert v_nov.handled_in_period and not v_nov.received_in_period and v_nov.overdue
    # December: no longer handled.
    assert not evaluate(f, parse_period("2026-12"), parse_period("2026-12").end, CAL).handled_in_period


def test_events_before_receipt_are_clamped_to_it() -> None:
    f = fold(completed(t(10, 1)), received(t(10, 2, 16)))
    assert f.finished_at == t(10, 2, 16)
    assert evaluate(f, OCT, OCT.end, CAL).on_time


def test_facts_from_events() -> None:
    f = fold(
        received(t(10, 2, 16), channel="counter", personal_store_used=False),
        ev("components_digitized", t(10, 3), components=2, reused=1, from_personal_store=1),
        ev("components_digitized", t(10, 4), components=1, reused=0, from_personal_store=0),
        ev("paid", t(10, 3), amount_vnd=50000, channel="gateway"),
        ev("synced", t(10, 5)),
        ev("synced", t(10, 4)),
        completed(t(10, 6), result_digitized=False, outcome="refused"),
        ev("result_returned", t(10, 7)),
    )
    assert (f.components_digitized, f.reused, f.from_personal_store) == (3, 1, 1)
    assert f.synced_at == t(10, 4) and f.outcome == "refused" and not f.result_digitized
    assert f.payments[0].online and f.result_returned_at == t(10, 7)
    v = evaluate(f, OCT, OCT.end, CAL)
    assert v.personal_store and not v.online and "3.1" in v.shortfalls and "3.2" in v.shortfalls
    assert v.shortfalls["4.3"].startswith("không nộp trực tuyến")
