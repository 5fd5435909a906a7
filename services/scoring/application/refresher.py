"""The background refresher: judges changed dossiers, recomputes dirty periods (kỳ cần tính lại).

At most once per tick (``scoring_refresh_seconds``). First every dossier due for judging is
judged into contributions (:mod:`services.scoring.application.judging`), which marks the periods
whose contributions changed. Then every dirty period is claimed one at a time and recomputed, so
many batches arriving within a tick cost one recomputation (coalescing); a mark committed during
a recomputation is the next tick's.

A claim is a lease and a snapshot (:func:`services.scoring.adapters.dirty_periods.claim_period`):
the recomputation reads every count from the snapshot its claim began and deletes only the marks
that snapshot sees, so another worker's judging goes on beside it and never waits for it.

Scale-out: any number of workers may run this loop. Judging claims dossiers ``SKIP LOCKED`` and
periods are leased with a tried advisory lock, so each piece of work is done by one worker at a
time and none waits for another. A worker that dies holds nothing: its transaction aborts with
its connection. What it leaves is the row of its last judging step, whose catalogue or calendar
copy may have judged a change with the older version: another worker takes it over once its lease
expired (:func:`open_judging_step`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial

from opentelemetry import trace
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.calendar_store import announce_declared_days
from services.scoring.adapters.dirty_periods import (
    claim_period,
    dirty_labels,
    mark_closed_periods,
    mark_periods_past_petition_deadlines,
)
from services.scoring.adapters.tables import period_state
from services.scoring.application.caches import sync_calendar, sync_methodologies
from services.scoring.application.context import Scoring
from services.scoring.application.judging import judge_chunk, judge_flagged_chunk, open_step_with_copies
from services.scoring.application.scoring_service import compute_period
from services.scoring.domain import Procedure, parse_period
from shared.calendar import WorkingCalendar
from shared.db import caused_by
from shared.metrics import (
    DOSSIERS_JUDGED,
    FRESHNESS_SECONDS,
    JUDGING_STEP_SECONDS,
    PERIOD_RECOMPUTE_SECONDS,
    REFRESH_FAILURES,
    REFRESH_SECONDS,
)
from shared.trace_context import links_of

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
JUDGE_BUDGET_S = 15.0


async def judge_pending(app: Scoring, now: datetime, budget_s: float = JUDGE_BUDGET_S, lanes: int | None = None) -> int:
    """Judge the dossiers whose pending events were accepted before this step began (the
    consumer's flags), then those due at ``now`` by time, a chunk per transaction (bounded lock
    time; the consumer's batches interleave between chunks). Under a sustained load the budget
    ends the step so scores still refresh; what is left re-marks its periods when judged next tick.

    In ``lanes`` (``scoring_judging_lanes``) at once, each on its own connection: a chunk waits
    for PostgreSQL most of its time (reads, counter upserts, the facts, the commit) and for its
    thread the rest, and one lane left both idle in turn — two judged 6–10 % more dossiers a
    second under a 2,000 events/s stream (docs/performance.md, session 10), three made freshness
    there ≈ 20 % better (session 16). The first lane takes the claim order from its start, the
    second from its end (:func:`judge_chunk`), others after the first; chunks are claimed
    ``SKIP LOCKED`` and lock their counter rows in one order, so lanes never judge a dossier twice
    nor deadlock (as two workers do not)."""
    began = datetime.now(UTC)
    procedures, calendar = await open_judging_step(app, lease_s=budget_s + STEP_LEASE_S)
    deadline = time.monotonic() + budget_s

    # Changed dossiers first (their flags of events accepted before this step), then by time.
    chunks = (partial(judge_flagged_chunk, accepted_before=began), judge_chunk)

    async def lane(from_end: bool) -> int:
        judged = 0
        for chunk in chunks:
            while time.monotonic() < deadline:
                async with app.uow() as uow:
                    # The step's own copies, not app.calendar: another sync in this process (the
                    # API's, when it shares the app) may replace that with one it read earlier.
                    n = await chunk(uow.session, now=now, calendar=calendar, procedures=procedures, from_end=from_end)
                judged += n
                if n == 0:
                    break
                await asyncio.sleep(0)
        return judged

    count = lanes if lanes is not None else app.settings.scoring_judging_lanes
    return sum(await asyncio.gather(*(lane(from_end=k == 1) for k in range(count))))


# How long, beyond its judging budget, a judging step's row (adapters.judging_steps) is its
# worker's: after that any worker takes it over and re-judges what its catalogue and calendar
# copies could not see. A worker replaces its row at its next step, so this covers the rest of its
# tick too (the periods recomputed after judging, the pause); a longer tick costs a second
# re-judging of a change made meanwhile, never a lost one (the worker still reconciles its own
# copies). The changes a worker that dies judged with an older copy are made right within this
# and a tick.
STEP_LEASE_S = 120.0


async def open_judging_step(app: Scoring, *, lease_s: float) -> tuple[dict[str, Procedure], WorkingCalendar]:
    """Open this worker's judging step and load the catalogue and the calendar it judges with
    (``app.calendar`` too: the tick's recomputations use it).

    The step judges with the copies loaded here; a change committed during it may be judged with
    the older copy (a chunk consumes the change's re-judging mark; a dossier not judged yet has
    no procedure on its row for the change to find). So the next step of this worker re-judges
    the dossiers of every procedure written unseen by this step's snapshot — every dossier, and
    every scored period, when the declared days were — and if this worker is gone by then, the
    next step of any worker once the row's lease has expired
    (:mod:`services.scoring.adapters.judging_steps`). The row is committed before the step judges
    anything; the copies are read after it, so they hold at least what the snapshot saw."""
    async with app.uow() as uow:  # the app's calendar: rebuilt only when the declared days changed
        step, procedures, calendar = await open_step_with_copies(
            uow.session, previous=app.judging_step, lease_s=lease_s, read_calendar=partial(sync_calendar, app)
        )
    app.judging_step = step
    return procedures, calendar


async def judge_step(app: Scoring, now: datetime) -> int:
    """Judge what is due at ``now`` (after syncing the methodologies; the step syncs its calendar
    and catalogue copies itself, after its snapshot); returns the dossiers judged."""
    async with app.sessions() as session:
        await sync_methodologies(app, session)
    t0 = time.monotonic()
    judged = await judge_pending(app, now)
    if judged:  # an idle step is not a judging step worth a sample
        seconds = time.monotonic() - t0
        JUDGING_STEP_SECONDS.observe(seconds)
        DOSSIERS_JUDGED.inc(judged)
        log.info("dossiers judged", extra={"dossiers": judged, "seconds": round(seconds, 3)})
    return judged


async def refresh_once(
    app: Scoring, *, now: datetime | None = None, month_every: float = 0.0, derived_every: float = 0.0
) -> list[str]:
    """Judge the dossiers due, then recompute every period marked dirty; returns the labels done.

    One ``now`` for both steps: the contributions are exact at that instant when aggregated.
    """
    now = now or datetime.now(UTC)
    await judge_step(app, now)
    async with app.uow() as uow:  # a period that ended since it was computed is judged at its end
        await mark_closed_periods(uow.session, now)
    return await recompute_dirty(app, now, month_every=month_every, derived_every=derived_every)


async def recompute_dirty(
    app: Scoring, now: datetime, *, month_every: float = 0.0, derived_every: float = 0.0
) -> list[str]:
    """Recompute the periods marked dirty as of ``now``; returns the labels done.

    ``month_every`` / ``derived_every``: a dirty month / quarter or year computed less than this
    many seconds before ``now`` (by any worker) waits, still marked — the live loop's cost bound,
    so that N workers do not recompute a period N times as often; 0 recomputes everything marked.
    """
    async with app.sessions() as session:
        labels = refresh_order(await dirty_labels(session))
        if month_every > 0 or derived_every > 0:
            labels = one_derived(await _due(session, labels, now, month_every, derived_every))
    # The months and the (at most one) quarter or year due are recomputed side by side, each on
    # its own connection and at the same instant: a refresh waits on PostgreSQL for about half its
    # time, and the tick — so the next judging, and the next month — waits for the slower of the
    # two instead of both in turn. On a saturated CPU the month commits a little later (both score
    # on this event loop): at 2,000 events/s freshness p99 fell, at 500 the p50 rose by ≈ 1 s
    # (docs/performance.md, session 11).
    done = await asyncio.gather(
        _recompute_each(app, [label for label in labels if not _derived(label)], now),
        _recompute_each(app, [label for label in labels if _derived(label)], now),
    )
    recomputed = set(done[0]) | set(done[1])
    return [label for label in labels if label in recomputed]


async def _recompute_each(app: Scoring, labels: list[str], now: datetime) -> list[str]:
    """Recompute ``labels`` one after the other; returns those recomputed (not taken by another
    worker, not failed)."""
    done: list[str] = []
    for label in labels:
        t0 = time.monotonic()
        try:
            recomputed = await _recompute_claimed(app, label, now)
        except Exception:
            # One period failing (rolled back: still marked dirty) never stops the others.
            log.exception("period recomputation failed; retrying next tick", extra={"period": label})
            REFRESH_FAILURES.inc()
            continue
        if recomputed is not None:
            seconds = time.monotonic() - t0
            observe_freshness(app, recomputed)
            PERIOD_RECOMPUTE_SECONDS.labels(kind=_kind(label) or "other").observe(seconds)
            log.info("period recomputed", extra={"period": label, "seconds": round(seconds, 3)})
            done.append(label)
    return done


_KIND_ORDER = {"month": 0, "quarter": 1, "year": 2}


def refresh_order(labels: Iterable[str]) -> list[str]:
    """Months first, the newest first, then quarters, then years: freshness is the running month's
    (the first recomputation that counts a batch), and a sorted list put the year before it."""

    def key(label: str) -> tuple[int, float, str]:
        try:
            period = parse_period(label)
        except ValueError:
            return (len(_KIND_ORDER), 0.0, label)  # claimed and dropped by _recompute_claimed
        return (_KIND_ORDER.get(period.kind, len(_KIND_ORDER)), -period.start.timestamp(), label)

    return sorted(labels, key=key)


def one_derived(labels: list[str]) -> list[str]:
    """Every month, and at most one quarter or year (the first in :func:`refresh_order`) per tick.

    A derived period re-scores every office too (≈ as long as the month under a stream); it runs
    beside the months, and the next tick's judging waits for the slower of the two: a quarter and
    a year in one tick held the next month's refresh — the freshness everyone sees — for both. The
    one left waits a tick, still marked (the quarter, just computed, is not due again before the
    year has had its turn)."""
    derived = [label for label in labels if _derived(label)]
    return [label for label in labels if label not in derived[1:]]


def _derived(label: str) -> bool:
    """A quarter or a year: derived from the same contributions as its months."""
    return _kind(label) in ("quarter", "year")


def _kind(label: str) -> str | None:
    try:
        return parse_period(label).kind
    except ValueError:
        return None  # claimed and dropped by _recompute_claimed


async def _due(
    session: AsyncSession, labels: list[str], now: datetime, month_every: float, derived_every: float
) -> list[str]:
    """The labels to recompute now: those not computed (by any worker: read from period_state)
    within their interval — ``month_every`` for a month, ``derived_every`` for a quarter or year."""
    if not labels:
        return labels
    rows = await session.execute(
        select(period_state.c.period, func.min(period_state.c.computed_at))
        .where(period_state.c.period.in_(labels))
        .group_by(period_state.c.period)
    )
    last = {period: at for period, at in rows}

    def due(label: str) -> bool:
        at, kind = last.get(label), _kind(label)
        if at is None or kind is None:
            return True
        return now - at >= timedelta(seconds=month_every if kind == "month" else derived_every)

    return [label for label in labels if due(label)]


FRESHNESS_MEMORY = 10_000  # acceptance times already observed (a batch counts once, at its first period)


def observe_freshness(app: Scoring, accepted: list[datetime]) -> None:
    """``sqi_freshness_seconds``: from a batch's acceptance by ingest to the first committed
    recomputation that counts it (batches share one acceptance time: one observation each)."""
    now = datetime.now(UTC)
    for t in accepted:
        if t in app.freshness_seen:
            continue
        app.freshness_seen[t] = None
        FRESHNESS_SECONDS.observe(max(0.0, (now - t).total_seconds()))
    while len(app.freshness_seen) > FRESHNESS_MEMORY:
        app.freshness_seen.pop(next(iter(app.freshness_seen)))


def _serialization_failure(exc: BaseException) -> bool:
    return caused_by(exc, lambda e: getattr(e, "sqlstate", None) == "40001")


async def _recompute_claimed(app: Scoring, label: str, now: datetime) -> list[datetime] | None:
    """Claim ``label`` and recompute it in one ``REPEATABLE READ`` transaction; None when another
    worker took it first, else the acceptance times of the batches it now counts.

    The claim (:func:`~services.scoring.adapters.dirty_periods.claim_period`) is the lease —
    another worker skips the period, never waits, never computes it twice; a worker that dies
    loses its connection, the transaction aborts and the marks are there for the next tick —
    and the snapshot every count is read from, so judging goes on beside it without waiting."""
    try:
        async with app.uow() as uow:
            await uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            claimed = await claim_period(uow.session, label)
            if claimed is None:
                return None
            try:
                period = parse_period(label)
            except ValueError:
                log.warning("dropping unparseable dirty period", extra={"period": label})
                return None
            # One span per recomputation, linked to the traces of the changes it counts: a trace
            # from an integrator's request leads to the score update (whose events carry this
            # span's context).
            with tracer.start_as_current_span(
                "scoring refresh",
                links=links_of(claimed.traceparents),
                attributes={"sqi.period": label},
            ):
                await compute_period(
                    uow,
                    period=period,
                    methodologies=list(app.methodologies.values()),
                    now=now,
                    calendar=app.calendar,
                    judge=False,
                )
    except Exception as exc:
        # Only when two workers' leases met in the instant between one's snapshot and its lease:
        # the other committed this period; any newer marks are the next tick's.
        if _serialization_failure(exc):
            log.info("period computed by another worker meanwhile", extra={"period": label})
            return None
        raise
    return claimed.accepted_at


def next_tick_in(every_s: float, began: float, now: float | None = None) -> float:
    """Seconds to wait before the next tick: ticks begin at most every ``every_s`` (a period, not
    a gap). Under a stream a tick lasts longer than the period and the next begins at once: a
    fixed pause after each tick added itself to every tick, so to freshness (≈ 1.5 ticks) too."""
    return max(0.0, every_s - ((time.monotonic() if now is None else now) - began))


# How often the live refresher looks for petition deadlines that passed (a few petitions' JSON a
# minute; the running period's 5.2 and 5.3 follow a deadline within about that).
PETITION_DEADLINES_EVERY_S = 60.0


def make_refresher(app: Scoring) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def refresher(stop: asyncio.Event) -> None:
        announced = False
        deadlines_checked = -PETITION_DEADLINES_EVERY_S
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                if not announced:  # once per start, retried each tick until it commits
                    async with app.uow() as uow:
                        await announce_declared_days(uow)
                    announced = True
                if t0 - deadlines_checked >= PETITION_DEADLINES_EVERY_S:
                    async with app.uow() as uow:
                        await mark_periods_past_petition_deadlines(uow.session, datetime.now(UTC))
                    deadlines_checked = t0
                done = await refresh_once(
                    app,
                    month_every=app.settings.scoring_refresh_seconds,
                    derived_every=app.settings.scoring_derived_refresh_seconds,
                )
                if done:
                    log.info("scores refreshed", extra={"periods": done})
            except Exception:
                log.exception("refresh failed; retrying next tick")
                REFRESH_FAILURES.inc()
            else:
                REFRESH_SECONDS.observe(time.monotonic() - t0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=next_tick_in(app.settings.scoring_refresh_seconds, t0))

    return refresher
