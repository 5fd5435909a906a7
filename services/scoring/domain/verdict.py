"""A dossier judged for one period (đánh giá hồ sơ trong kỳ).

``judged_at`` is the period's end, or now for the running period; only what happened before it
counts (so a closed period's verdict is stable). "Handled in the period" = received in it, or
received earlier and its clock still running at the period's start; a dossier whose clock ended
on an unanswered supplement request before the period is not carried into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.calendar import WorkingCalendar, local_date

from .dossier import ClockState, DossierFacts, clock_as_of
from .period import Period


@dataclass(frozen=True, slots=True)
class DossierVerdict:
    """Per-dossier flags for every indicator, with the reason for each shortfall."""

    dossier_id: str
    unit_code: str
    procedure_code: str
    received_at: datetime
    received_in_period: bool
    handled_in_period: bool
    finished: bool  # the clock ended before judged_at (completed, withdrawn, unanswered request)
    completed: bool
    on_time: bool  # 2.1 (meaningful when handled_in_period)
    due_at: datetime | None
    clock_end_at: datetime | None
    working_days_late: int
    handling_working_days: int | None  # 2.2: clock ended inside the period
    synced: bool
    result_digitized: bool
    digitised: bool  # ≥ 1 component digitised
    reused: bool
    personal_store: bool
    population_data_used: bool
    online: bool  # received through the online channel
    returns_document: bool
    has_fee: bool
    for_citizens: bool
    has_payment: bool
    paid_online: bool
    paid_online_in_period: bool
    payments_all_zero: bool  # ≥ 1 payment and every one 0 VND
    receiving_officer_id: str | None
    responsible_officer_id: str | None  # the last officer who acted before judged_at
    officer_ids: tuple[tuple[str, str], ...]  # (event type, officer id) in order, for explanation
    due_unknown: bool
    shortfalls: dict[str, str] = field(default_factory=dict)

    @property
    def overdue(self) -> bool:
        return not self.on_time

    @property
    def online_counted(self) -> bool:
        """4.3: received online and, if the procedure returns a document, completed with an e-result."""
        return self.online and (not self.returns_document or self.result_digitized)

    @property
    def electronic_result_ok(self) -> bool:
        """A completed dossier of a document-returning procedure needs an electronic result."""
        return not (self.returns_document and self.completed) or self.result_digitized


def _late_text(n: int) -> str:
    return f"quá hạn {n} ngày làm việc / overdue by {n} working days"


def evaluate(facts: DossierFacts, period: Period, judged_at: datetime, calendar: WorkingCalendar) -> DossierVerdict:
    """Judge a dossier for ``period`` as of ``judged_at`` (period end, or now when running)."""
    clock: ClockState = clock_as_of(facts, judged_at, calendar)

    def known(t: datetime) -> bool:
        return t < judged_at

    received_in = period.start <= facts.received_at < period.end and known(facts.received_at)
    open_at_start = clock.clock_end_at is None or clock.clock_end_at >= period.start
    handled = received_in or (facts.received_at < period.start and open_at_start)
    finished = clock.clock_end_at is not None
    completed = facts.terminal_kind == "completed" and facts.finished_at is not None and known(facts.finished_at)
    on_time = clock.on_time(judged_at)
    late = 0
    if not on_time and clock.due_at is not None:
        late = calendar.working_days_late(clock.due_at, clock.clock_end_at or judged_at)
    handling_days: int | None = None
    if clock.clock_end_at is not None and period.start <= clock.clock_end_at < period.end:
        span = calendar.working_days_between(local_date(facts.received_at), local_date(clock.clock_end_at))
        handling_days = max(0, span - clock.paused_working_days)

    proc = facts.procedure
    digits = [d for d in facts.digitisations if known(d.at)]
    pays = [p for p in facts.payments if known(p.at)]
    officers = [o for o in facts.officers if known(o.at)]
    synced = facts.synced_at is not None and known(facts.synced_at)
    result_digitized = completed and facts.result_digitized
    returns_document = bool(proc and proc.returns_document)
    personal_store = facts.personal_store_used or any(d.from_personal_store > 0 for d in digits)
    verdict = DossierVerdict(
        dossier_id=facts.dossier_id,
        unit_code=facts.unit_as_of(judged_at),
        procedure_code=facts.procedure_code,
        received_at=facts.received_at,
        received_in_period=received_in,
        handled_in_period=handled,
        finished=finished,
        completed=completed,
        on_time=on_time,
        due_at=clock.due_at,
        clock_end_at=clock.clock_end_at,
        working_days_late=late,
        handling_working_days=handling_days,
        synced=synced,
        result_digitized=result_digitized,
        digitised=sum(d.components for d in digits) > 0,
        reused=sum(d.reused for d in digits) > 0,
        personal_store=personal_store,
        population_data_used=facts.population_data_used,
        online=facts.channel == "online",
        returns_document=returns_document,
        has_fee=bool(proc and proc.has_fee),
        for_citizens=bool(proc and proc.for_citizens),
        has_payment=bool(pays),
        paid_online=any(p.online for p in pays),
        paid_online_in_period=any(p.online and period.contains(p.at) for p in pays),
        payments_all_zero=bool(pays) and all(p.amount_vnd == 0 for p in pays),
        receiving_officer_id=facts.receiving_officer_id,
        responsible_officer_id=officers[-1].officer_id if officers else None,
        officer_ids=tuple((o.event_type, o.officer_id) for o in officers),
        due_unknown=clock.due_at is None,
    )
    verdict.shortfalls.update(_shortfalls(verdict, clock))
    return verdict


def _shortfalls(v: DossierVerdict, clock: ClockState) -> dict[str, str]:
    """Why this dossier costs points on each indicator it is counted in (empty when it does not)."""
    out: dict[str, str] = {}
    if v.handled_in_period:
        if not v.synced:
            out["1.4"] = "chưa đồng bộ lên Cổng DVCQG / not synced to the national portal"
        if not v.on_time:
            if clock.overdue_locked_reason == "second supplement request":
                out["2.1"] = "yêu cầu bổ sung lần thứ hai / a second supplement request"
            elif clock.overdue_locked_reason is not None:
                out["2.1"] = "yêu cầu bổ sung sau hạn / supplement requested after the due time"
            else:
                out["2.1"] = _late_text(v.working_days_late)
            out["5.4"] = out["2.1"]
        if not v.result_digitized:
            out["3.1"] = (
                "không có kết quả điện tử / no electronic result" if v.completed else "chưa có kết quả / no result yet"
            )
        if not v.digitised:
            out["3.2"] = "chưa số hóa thành phần hồ sơ / no component digitised"
        elif not v.electronic_result_ok:
            out["3.2"] = "kết quả chưa được số hóa / result not digitised"
        if not v.reused:
            out["3.3"] = "không tái sử dụng dữ liệu số hóa / no digitised data reused"
        if not v.personal_store:
            out["3.4"] = "không dùng kho dữ liệu cá nhân / personal data store not used"
        if not v.population_data_used:
            out["3.5"] = "không khai thác dữ liệu dân cư / population data not used"
    if v.received_in_period:
        if not v.online:
            out["4.3"] = "không nộp trực tuyến / not submitted online"
        elif not v.online_counted:
            out["4.3"] = "chưa có kết quả điện tử / no electronic result yet"
        if v.has_fee and not v.payments_all_zero and not v.paid_online:
            out["4.6"] = "không thanh toán trực tuyến / not paid online"
    return out
