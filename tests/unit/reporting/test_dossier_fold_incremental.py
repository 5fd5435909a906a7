"""Folding new events onto a stored state (``folds_on``) gives what a refold of every remembered
event gives, and the appended history is the one ``remember`` keeps — on random event sets in
random arrival orders, with the stored state read back as PostgreSQL returns it (UTC)."""

from __future__ import annotations

import random
from dataclasses import fields, replace
from datetime import UTC, datetime

from services.reporting.domain.dossiers import (
    OFFICER_ONLY,
    DossierEvent,
    DossierState,
    apply,
    folded_through,
    folds_on,
    refold,
    remember,
)
from tests.unit.reporting.test_dossier_fold_reference import CAL, LIMITS, random_event


def as_stored(state: DossierState) -> DossierState:
    """The state as a row reads back: every time in UTC."""
    changes = {f.name: v.astimezone(UTC) for f in fields(state) if isinstance(v := getattr(state, f.name), datetime)}
    return replace(state, **changes)


def appended(history: list[DossierEvent], new: list[DossierEvent]) -> list[DossierEvent]:
    """What ``_APPEND_DOSSIERS`` does to the stored history, in Python."""
    officer = [e for e in history[-1:] if e.type == OFFICER_ONLY]
    shaping = history[: len(history) - len(officer)]
    new_officer = [e for e in new[-1:] if e.type == OFFICER_ONLY]
    return shaping + new[: len(new) - len(new_officer)] + (new_officer or officer)


def test_folding_on_the_stored_state_equals_the_refold() -> None:
    rng = random.Random(20261130)
    folded_on = 0
    for _ in range(4_000):
        events = [random_event(rng) for _ in range(rng.randint(1, 10))]
        if rng.random() < 0.6:  # mostly a stream in time order, as a back-fill sends it
            events.sort(key=lambda e: e.occurred_at)
        cuts = sorted(rng.sample(range(len(events) + 1), k=min(len(events) + 1, rng.randint(1, 4))))
        batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True) if b > a]
        history: list[DossierEvent] = []
        state: DossierState | None = None
        unknown = rng.randint(0, len(batches))  # T.LONG reaches the catalogue before this batch
        for i, batch in enumerate(batches):
            limits = LIMITS if i >= unknown else {c: n for c, n in LIMITS.items() if c != "T.LONG"}
            full_history = remember(history, batch)
            full_state = refold("HS-1", full_history, time_limits=limits, calendar=CAL)
            if state is not None and folds_on(state, folded_through(history), batch, time_limits=limits):
                folded_on += 1
                new = remember((), batch)
                onto = apply(state, new, time_limits=limits, calendar=CAL) if new else state
                assert onto == full_state, (history, batch)
                assert appended(history, new) == full_history, (history, batch)
            history, state = full_history, as_stored(full_state)
    assert folded_on > 1_000  # the fast path was exercised, not only the refold


def test_an_event_at_the_latest_instant_is_refolded() -> None:
    rng = random.Random(7)
    base = [random_event(rng) for _ in range(5)]
    history = remember((), base)
    state = refold("HS-1", history, time_limits=LIMITS, calendar=CAL)
    through = folded_through(history)
    assert through is not None
    twin = DossierEvent("HS-1", "dossier.transferred", through, {"to_unit_code": "P09"})
    if state.finished_at is None:
        assert not folds_on(state, through, [twin], time_limits=LIMITS)
    # Events the fold ignores never force a refold.
    quiet = DossierEvent("HS-1", "dossier.synced", datetime(2000, 1, 1, tzinfo=UTC), {"officer_id": ""})
    assert folds_on(DossierState("HS-1"), through, [quiet], time_limits=LIMITS)
