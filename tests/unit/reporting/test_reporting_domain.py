"""Reporting's pure rules: the dossier fold, periods, ranking order, warning texts, charts."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import permutations

from services.reporting.domain import periods
from services.reporting.domain.charts import trend_svg
from services.reporting.domain.dossiers import (
    DossierEvent,
    DossierState,
    apply,
    from_json,
    refold,
    remember,
    to_json,
)
from services.reporting.domain.ranking import StoredRow, build_ranking
from services.reporting.domain.warnings import alert_warning, dossier_warning, due_window_end, silence_limit
from services.reporting.exports.labels import period_vi
from shared.calendar import VN_TZ, WorkingCalendar

CAL = WorkingCalendar()
T0 = datetime(2026, 10, 5, 9, 0, tzinfo=VN_TZ)  # a Monday


def ev(kind: str, hours: float, **data: object) -> DossierEvent:
    return DossierEvent("HS-1", f"dossier.{kind}", T0 + timedelta(hours=hours), {"dossier_id": "HS-1", **data})


def fold(events: list[DossierEvent]) -> DossierState:
    return apply(DossierState("HS-1"), events, time_limits={"T.DKT.01": 3, "NOW": None}, calendar=CAL)


def test_due_time_from_the_procedure_and_answered_on_receipt() -> None:
    s = fold([ev("received", 0, unit_code="P01", procedure_code="T.DKT.01", officer_id="a")])
    assert s.due_at == datetime(2026, 10, 9, 0, 0, tzinfo=VN_TZ)  # end of Thursday, 3 working days on
    assert s.unit_code == "P01" and s.officer_id == "a" and s.finished_at is None
    same_day = fold([ev("received", 0, unit_code="P01", procedure_code="NOW")])
    assert same_day.due_at == datetime(2026, 10, 6, 0, 0, tzinfo=VN_TZ)
    unknown = fold([ev("received", 0, unit_code="P01", procedure_code="X")])
    assert unknown.due_at is None


def test_any_order_gives_the_same_state_and_terminal_wins() -> None:
    events = [
        ev("received", 0, unit_code="P01", procedure_code="T.DKT.01", officer_id="a"),
        ev("transferred", 5, to_unit_code="P01.L02", officer_id="b"),
        ev("completed", 30, outcome="approved", officer_id="c"),
        ev("received", 0, unit_code="P01", procedure_code="T.DKT.01", officer_id="a"),  # a duplicate
    ]
    states = set()
    for order in permutations(events):
        s = fold(list(order[:2]))
        s = apply(s, order[2:], time_limits={"T.DKT.01": 3}, calendar=CAL)
        states.add(s)
    assert len(states) == 1
    (s,) = states
    assert s.unit_code == "P01.L02" and s.officer_id == "c" and s.finish_kind == "completed"


def test_supplement_pauses_then_moves_the_due_time() -> None:
    received = ev("received", 0, unit_code="P01", procedure_code="T.DKT.01")
    asked = ev("supplement_requested", 1, reason="thiếu tờ khai")
    paused = fold([received, asked])
    assert paused.paused_at is not None and paused.supplement_reason == "thiếu tờ khai"
    answered = fold([received, asked, ev("supplement_received", 48)])  # Wednesday: 2 working days paused
    assert answered.paused_at is None
    assert answered.due_at == datetime(2026, 10, 13, 0, 0, tzinfo=VN_TZ)


def test_periods() -> None:
    assert periods.previous("2026-01") == "2025-12" and periods.previous("2026-Q1") == "2025-Q4"
    assert periods.last_n("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]
    assert periods.kind_of("2026-13") is None and periods.kind_of("2026") == "year"
    assert periods.latest_closed_month(["2026-10", "2026-11", "2026-Q4"], datetime(2026, 11, 20).date()) == "2026-10"
    assert periods.display("2026-10", "vi") == "Tháng 10/2026" and periods.display("2026-Q3", "en") == "Q3 2026"


def test_period_labels_are_read_as_scoring_writes_them() -> None:
    # Scoring's patterns: ASCII digits only, matched whole; reporting's rules: a capital Q, years from 1000.
    for label in ("٢٠٢٦-١٠", "２０２６", "2026\n", "2026-q3", "0999", "0999-10"):
        assert periods.kind_of(label) is None and periods.previous(label) is None, label
    assert period_vi("٢٠٢٦-١٠") == "٢٠٢٦-١٠" and period_vi("2026-Q3") == "quý III/2026"
    assert period_vi("2026-10-01..2026-10-15") == "từ ngày 01/10/2026 đến ngày 15/10/2026"


def stored(code: str, total: str, rank: int | None, delta: int | None, previous: int | None, **kw: bool) -> StoredRow:
    groups = '{"G1": "15.5", "G2": 20}'
    return StoredRow(
        code,
        code,
        "province",
        "CT",
        Decimal(total),
        "good",
        rank,
        delta,
        50,
        kw.get("provisional", False),
        groups,
        previous,
    )


def test_a_stored_ranking_is_built_as_the_read_model_shows_it() -> None:
    rows = build_ranking(
        [
            stored("P04", "60", 9, 3, 1, provisional=True),  # provisional: never ranked, no rank change
            stored("P03", "70", 3, None, None),  # new this period: no change to show
            stored("P02", "80", 2, None, 1),  # scoring sent no change: from the previous rank
            stored("P01", "90", 1, 5, 2),  # scoring's own change wins
        ]
    )
    assert [r.unit_code for r in rows] == ["P01", "P02", "P03", "P04"]
    assert [r.rank_delta for r in rows] == [5, -1, None, None] and rows[3].rank is None
    assert rows[0].groups == {"G1": Decimal("15.5"), "G2": Decimal(20)} and rows[0].total == Decimal(90)


def test_warning_texts_and_windows() -> None:
    now = T0
    soon = dossier_warning(dossier_id="d", unit_code="P01", officer_id="o", due_at=now + timedelta(hours=5), now=now)
    late = dossier_warning(dossier_id="d", unit_code="P01", officer_id="o", due_at=now - timedelta(hours=5), now=now)
    assert soon.kind == "due_soon" and late.kind == "overdue" and "quá hạn" in late.detail
    assert due_window_end(T0, 2, CAL) == datetime(2026, 10, 8, 0, 0, tzinfo=VN_TZ)
    drop = alert_warning(kind="score_drop", unit_code="P01", period="2026-10", previous="88.50", current="80.00")
    assert "8.50" in drop.detail
    assert silence_limit(None, factor=3, min_s=900, default_s=86400) == timedelta(days=1)
    assert silence_limit(60, factor=3, min_s=900, default_s=86400) == timedelta(seconds=900)
    assert silence_limit(3600, factor=3, min_s=900, default_s=86400) == timedelta(hours=3)


def test_trend_chart_is_an_accessible_svg_without_script() -> None:
    svg = trend_svg([("2026-08", Decimal(80)), ("2026-09", None), ("2026-10", Decimal("85.5"))], title="Xu hướng")
    assert svg.startswith("<svg") and 'role="img"' in svg and 'aria-label="Xu hướng"' in svg
    assert "<script" not in svg and "2026-10" in svg


def test_arrival_order_never_changes_the_state_pauses_included() -> None:
    """Each event arriving alone, in every order: the remembered events refold to one state,
    and a supplement received before its ``received`` still moves the due time."""
    events = [
        ev("received", 0, unit_code="P01", procedure_code="T.DKT.01", officer_id="a"),  # Monday 09:00
        ev("supplement_requested", 25, reason="thiếu tờ khai"),  # Tuesday 10:00
        ev("assigned", 30, officer_id="b"),  # not a shaping event: only its officer is kept
        ev("transferred", 50, to_unit_code="P01.L02"),
        ev("supplement_received", 73),  # Thursday 10:00: Wednesday and Thursday were paused
    ]
    limits = {"T.DKT.01": 3}
    states = set()
    for order in permutations(events):
        history: list[DossierEvent] = []
        for e in order:
            history = remember(history, [e])
            state = refold("HS-1", history, time_limits=limits, calendar=CAL)
        states.add(state)
    assert len(states) == 1
    (s,) = states
    assert s == fold(events)  # the same as all of them at once
    # End of Thursday + the 2 paused working days = end of the next Monday.
    assert s.due_at == datetime(2026, 10, 13, 0, 0, tzinfo=VN_TZ) and s.paused_at is None
    assert s.unit_code == "P01.L02" and s.officer_id == "b"


def test_remembered_events_keep_no_text_and_no_duplicates() -> None:
    received = ev("received", 0, unit_code="P01", procedure_code="T.DKT.01", note="Nguyễn Văn A, 0912…")
    kept = remember([], [received, received, ev("synced", 1), ev("assigned", 2, officer_id="x")])
    assert [e.type for e in kept] == ["dossier.received", "officer"]
    assert "note" not in kept[0].data and kept[0].data["unit_code"] == "P01"
    assert from_json("HS-1", to_json(kept)) == kept
