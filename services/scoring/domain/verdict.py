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

from .dossier import ClockState, DossierFacts, Payment, clock_as_of
from .feedback import NO_FEEDBACK, DossierFeedback
from .period import Period, utc_bounds


# Not frozen (nothing assigns to a verdict after :func:`evaluate`): a frozen dataclass's
# ``__init__`` sets each field through ``object.__setattr__``, ≈ 3 µs more for these 33 fields,
# and judging builds one per dossier and period.
@dataclass(slots=True)
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
    # 5.4: why citizens' feedback keeps it from counting as satisfied at the judging instant
    # (rated dissatisfied, named in a petition: DossierFeedback.exception), else None.
    feedback_exception: str | None = None
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


@dataclass(slots=True)  # not frozen, as DossierVerdict: built once per dossier and judging instant
class AsOf:
    """What a dossier's verdict takes from the judging instant alone (the same for every period
    judged at that instant: a running month, its quarter and its year share one)."""

    judged_at: datetime
    clock: ClockState
    completed: bool
    on_time: bool
    working_days_late: int
    handling_working_days: int | None  # if the clock ended: received → end, minus the pauses
    unit_code: str
    payments: tuple[Payment, ...]  # known at the instant
    digitised: bool
    reused: bool
    personal_store: bool
    synced: bool
    result_digitized: bool
    officer_ids: tuple[tuple[str, str], ...]
    feedback_exception: str | None


def as_of(
    facts: DossierFacts, judged_at: datetime, calendar: WorkingCalendar, feedback: DossierFeedback = NO_FEEDBACK
) -> AsOf:
    """The period-independent half of :func:`evaluate` (replays the clock once). ``feedback``:
    the dossier's ratings and the petitions naming it (5.4)."""
    clock: ClockState = clock_as_of(facts, judged_at, calendar)
    finished_at, end_at = facts.finished_at, clock.clock_end_at
    completed = facts.terminal_kind == "completed" and finished_at is not None and finished_at < judged_at
    on_time = clock.on_time(judged_at)
    late = 0
    if not on_time and clock.due_at is not None:
        late = calendar.working_days_late(clock.due_at, end_at or judged_at)
    handling_days: int | None = None
    if end_at is not None:
        span = calendar.working_days_between(local_date(facts.received_at), local_date(end_at))
        handling_days = max(0, span - clock.paused_working_days)
    # One pass over each kind of fact (judging calls this once per dossier and instant).
    components = reused = 0
    from_store = facts.personal_store_used
    for d in facts.digitisations:
        if d.at < judged_at:
            components += d.components
            reused += d.reused
            from_store = from_store or d.from_personal_store > 0
    synced_at = facts.synced_at
    return AsOf(
        judged_at,
        clock,
        completed,
        on_time,
        late,
        handling_days,
        facts.unit_as_of(judged_at),
        tuple([p for p in facts.payments if p.at < judged_at]),
        components > 0,
        reused > 0,
        from_store,
        synced_at is not None and synced_at < judged_at,
        completed and facts.result_digitized,
        tuple([(o.event_type, o.officer_id) for o in facts.officers if o.at < judged_at]),
        None if feedback is NO_FEEDBACK else feedback.exception(judged_at),  # nothing said: no exception
    )


def evaluate(
    facts: DossierFacts,
    period: Period,
    judged_at: datetime,
    calendar: WorkingCalendar,
    at: AsOf | None = None,
    *,
    explain: bool = True,
    feedback: DossierFeedback = NO_FEEDBACK,
) -> DossierVerdict:
    """Judge a dossier for ``period`` as of ``judged_at`` (period end, or now when running).

    ``at``: :func:`as_of` of the same facts, instant and feedback, when the caller judges several
    periods at one instant (computed here otherwise, with ``feedback``: the dossier's ratings and
    the petitions naming it). ``explain=False`` leaves ``shortfalls`` empty (the words only: every
    flag is set the same), for judging, which stores flags and never the words.
    """
    if at is None or at.judged_at != judged_at:
        at = as_of(facts, judged_at, calendar, feedback)
    verdict = in_period(verdict_as_of(facts, at), facts, at, *utc_bounds(period))
    if explain:
        verdict.shortfalls.update(_shortfalls(verdict, at.clock))
    return verdict


#: The verdict's fields that depend on the period judged (set by :func:`in_period`); every other
#: field depends only on the facts and the judging instant (:func:`verdict_as_of`).
PERIOD_FIELDS = frozenset({"received_in_period", "handled_in_period", "handling_working_days", "paid_online_in_period"})


def verdict_as_of(facts: DossierFacts, at: AsOf) -> DossierVerdict:
    """The period-independent part of :func:`evaluate`'s verdict at ``at.judged_at``; the
    :data:`PERIOD_FIELDS` are as for no period until :func:`in_period` sets them. Judging builds
    it once per instant and places it in the month, quarter and year in turn."""
    clock = at.clock
    proc = facts.procedure
    pays = at.payments
    paid_online = False
    all_zero = bool(pays)
    for p in pays:  # one pass, not an any() and an all() (judging builds one per dossier)
        paid_online = paid_online or p.online
        all_zero = all_zero and p.amount_vnd == 0
    officer_ids = at.officer_ids
    # Positional, in the fields' order (≈ a third of the keyword call's cost for 31 arguments).
    return DossierVerdict(
        facts.dossier_id,  # dossier_id
        at.unit_code,  # unit_code
        facts.procedure_code,  # procedure_code
        facts.received_at,  # received_at
        False,  # received_in_period
        False,  # handled_in_period
        clock.clock_end_at is not None,  # finished
        at.completed,  # completed
        at.on_time,  # on_time
        clock.due_at,  # due_at
        clock.clock_end_at,  # clock_end_at
        at.working_days_late,  # working_days_late
        None,  # handling_working_days
        at.synced,  # synced
        at.result_digitized,  # result_digitized
        at.digitised,  # digitised
        at.reused,  # reused
        at.personal_store,  # personal_store
        facts.population_data_used,  # population_data_used
        facts.channel == "online",  # online
        bool(proc and proc.returns_document),  # returns_document
        bool(proc and proc.has_fee),  # has_fee
        bool(proc and proc.for_citizens),  # for_citizens
        bool(pays),  # has_payment
        paid_online,  # paid_online
        False,  # paid_online_in_period
        all_zero,  # payments_all_zero
        facts.receiving_officer_id,  # receiving_officer_id
        officer_ids[-1][1] if officer_ids else None,  # responsible_officer_id
        officer_ids,  # officer_ids
        clock.due_at is None,  # due_unknown
        at.feedback_exception,  # feedback_exception
    )


def in_period(verdict: DossierVerdict, facts: DossierFacts, at: AsOf, start: datetime, end: datetime) -> DossierVerdict:
    """Set ``verdict``'s :data:`PERIOD_FIELDS` for the period ``[start, end)`` (its
    :func:`~.period.utc_bounds`) and return it: in place, so judging places one verdict of
    :func:`verdict_as_of` in the month, the quarter and the year judged at its instant in turn."""
    received_at = facts.received_at
    clock_end_at = at.clock.clock_end_at
    received_in = start <= received_at < end and received_at < at.judged_at
    verdict.received_in_period = received_in
    verdict.handled_in_period = received_in or (received_at < start and (clock_end_at is None or clock_end_at >= start))
    ended_in = clock_end_at is not None and start <= clock_end_at < end
    verdict.handling_working_days = at.handling_working_days if ended_in else None
    pays = at.payments
    verdict.paid_online_in_period = bool(pays) and any(p.online and start <= p.at < end for p in pays)
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
        elif v.feedback_exception is not None:
            out["5.4"] = v.feedback_exception
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
