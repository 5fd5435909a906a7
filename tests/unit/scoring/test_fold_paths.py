"""Judging from stored facts, or from stored facts extended by the newer events, gives exactly
what folding every event gives.

The simulated October of :mod:`test_judging_sameness` (with its ratings, petitions and odd
dossiers) arrives in batches — in time order as a live stream, in a random order, and in time
order with one event in twelve held back until later (out of order) — into a store that keeps
what ``scoring.dossier`` and ``scoring.dossier_event`` keep. After each batch the due dossiers
are claimed and judged through judging's own steps (:func:`plan`, the rows ``_EVENTS`` returns,
:func:`unfolded`, ``_judge_records``); some instants also flag every dossier (a catalogue change
with a changed time limit, a declared day) or make some due by feedback. Each judged dossier's
contributions, recheck instant (value and zone), set-aside reason, and the stored facts text
after the judging must equal those of folding all its stored events, every path must be taken,
and the domain's extension must equal the fold at every split of every dossier's events.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.scoring.adapters.codec import FOLD_VERSION, FoldMark, facts_from_json, facts_json
from services.scoring.adapters.tables import EPOCH
from services.scoring.application.judging import Judged, _event, _judge_records, judge_rows, plan, unfolded
from services.scoring.domain import Procedure, extend_facts, fold_dossier
from services.scoring.domain.calendar_cache import CachedCalendar
from services.scoring.domain.events import dedupe_and_sort

from .test_judging_sameness import Month

Row = tuple[Any, ...]


@pytest.fixture(scope="module")
def month() -> Month:
    return Month()


def test_extending_stored_facts_is_folding_every_event(month: Month) -> None:
    """At every split of each dossier's events in sort order: the facts of the first part, stored
    and read back, extended by the rest (when it is dated after them) are the facts of all."""
    extended = refused = 0
    for dossier_id, rows in month.rows.items():
        events = dedupe_and_sort(_event(r) for r in rows)
        whole = fold_dossier(dossier_id, events, month.procedures)
        for k in range(1, len(events)):
            first = fold_dossier(dossier_id, events[:k], month.procedures)
            if first is None:
                continue
            mark = FoldMark(events[k - 1].occurred_at, k)
            text = facts_json(first, mark)
            stored = facts_from_json(orjson.loads(text), month.procedures)
            assert stored == first and facts_json(stored, mark) == text
            if events[k].occurred_at <= mark.through:  # shares an instant with the last folded event
                with pytest.raises(ValueError):
                    extend_facts(stored, events[k:], mark.through)
                refused += 1
                continue
            facts = extend_facts(stored, events[k:], mark.through)
            assert facts == whole and facts_json(facts) == facts_json(whole)  # type: ignore[arg-type]
            extended += 1
    assert extended > 1000 and refused > 0


class Store:
    """``scoring.dossier`` and ``scoring.dossier_event`` as judging reads and writes them."""

    def __init__(self, month: Month) -> None:
        self.month = month
        self.events: dict[str, dict[tuple[str, str], Row]] = {}
        self.facts: dict[str, str] = {}  # the stored facts text
        self.recheck: dict[str, datetime | None] = {}
        self.paths = dict.fromkeys(("full", "refolded", "extended", "stored"), 0)

    def receive(self, rows: Iterable[Row]) -> None:
        """The consumer: a row per identity (a repeat changes nothing), the dossier flagged."""
        for r in rows:
            stored = self.events.setdefault(r[0], {})
            if (r[1], r[2]) not in stored:
                stored[(r[1], r[2])] = r
                self.recheck[r[0]] = EPOCH

    def flag_all(self) -> None:
        """A catalogue or calendar change: every dossier judged again."""
        for i in self.recheck:
            self.recheck[i] = EPOCH

    def feedback_at(self, ids: Iterable[str], at: datetime) -> None:
        """Ratings dated ``at``: due from then (even a dossier set aside, which the handler skips)."""
        for i in ids:
            r = self.recheck.get(i)
            self.recheck[i] = at if r is None else min(r, at)

    def _claim(self, now: datetime) -> list[Row]:
        due = sorted((r, i) for i, r in self.recheck.items() if r is not None and r < now)
        out = []
        for r, i in due:
            doc = orjson.loads(self.facts[i]) if i in self.facts else {}
            if doc.get("fold_version") == FOLD_VERSION:
                through = datetime.fromisoformat(doc["folded_through"])
                out.append((i, r, None, None, self.facts[i], through, doc["folded_events"]))
            else:
                out.append((i, r, None, None, None, None, None))
        return out

    def _newer(self, newer: dict[str, datetime]) -> list[Row]:
        """As ``_NEWER_EVENTS``: the rows after the mark with the count of those up to it, or nulls."""
        out: list[Row] = []
        for i, w in newer.items():
            rows = list(self.events[i].values())
            older = sum(1 for r in rows if r[4] <= w)
            out += [(*r, older) for r in rows if r[4] > w] or [(i, None, None, None, None, None, older)]
        return out

    def judge(self, now: datetime, procedures: dict[str, Procedure]) -> tuple[list[str], Judged]:
        """What judge_chunk does, on this store."""
        claimed = self._claim(now)
        ids = [r[0] for r in claimed]
        how = plan(claimed)
        rows = self._newer(how.newer)
        refold = unfolded(how, rows)
        rows = [r for r in rows if r[0] not in refold]
        how.fold_in_full(refold)
        rows += [r for i in how.full for r in self.events.get(i, {}).values()]  # as _EVENTS
        self.paths["refolded"] += len(refold)
        self.paths["full"] += len(how.full) - len(refold)
        self.paths["stored"] += len(set(how.stored) - set(how.newer))
        self.paths["extended"] += len({r[0] for r in rows if r[0] in how.stored and r[1] is not None})
        ratings = [r for r in self.month.ratings if r[0] in set(ids)]
        petitions = [r for r in self.month.petitions if r[0] in set(ids)]
        judged, _ = _judge_records(ids, rows, ratings, petitions, [], how.stored, procedures, now, CachedCalendar())
        for i, f in judged.facts.items():
            self.facts[i] = f[4]
        for i, r in judged.rechecks.items():
            self.recheck[i] = r
        for i in judged.unjudgeable:  # _SET_ASIDE: its facts' mark dropped
            self.recheck[i] = None
            if i in self.facts:
                doc = orjson.loads(self.facts[i])
                self.facts[i] = orjson.dumps({k: v for k, v in doc.items() if k != "fold_version"}).decode()
        return ids, judged


def assert_as_if_folded(store: Store, ids: list[str], judged: Judged, now: datetime, procs: dict[str, Any]) -> None:
    """The judged dossiers as folding every stored event of theirs judges them, and their stored
    facts as that fold stores them."""
    rows = {i: list(store.events[i].values()) for i in ids}
    marks = {i: FoldMark(max(r[4] for r in rs), len(rs)) for i, rs in rows.items()}
    events = {i: map(_event, rs) for i, rs in rows.items()}
    full = judge_rows(events, procs, now, CachedCalendar(), store.month.feedback, marks=marks)
    assert judged.contributions == full.contributions
    assert judged.rechecks == full.rechecks
    assert {i: r and r.utcoffset() for i, r in judged.rechecks.items()} == {
        i: r and r.utcoffset() for i, r in full.rechecks.items()
    }
    assert judged.unjudgeable == full.unjudgeable
    assert {i: store.facts.get(i) for i in full.facts} == {i: f[4] for i, f in full.facts.items()}


OCT = datetime(2026, 10, 1, tzinfo=UTC) - timedelta(hours=7)
INSTANTS = [OCT + timedelta(days=d, hours=h) for d in range(1, 31, 2) for h in (3, 10)] + [
    datetime(2026, 11, 12, 2, tzinfo=UTC),
    datetime(2027, 1, 6, 8, tzinfo=UTC),
]


def arrivals(month: Month, order: str) -> list[tuple[datetime, list[Row]]]:
    """The batches and the instant each is judged at: by occurrence (a live stream), shuffled,
    or by occurrence with one event in twelve held back two instants (out of order)."""
    rows = sorted((r for rs in month.rows.values() for r in rs), key=lambda r: (r[4], r[1], r[2]))
    rng = random.Random(7)
    if order == "shuffled":
        rng.shuffle(rows)
        size = len(rows) // 6 + 1
        return [(INSTANTS[-2] + timedelta(hours=k), rows[k * size : (k + 1) * size]) for k in range(6)]
    out: list[tuple[datetime, list[Row]]] = []
    held: dict[int, list[Row]] = {}
    it = iter(rows)
    pending = next(it, None)
    for n, now in enumerate(INSTANTS):
        batch = held.pop(n, [])
        while pending is not None and pending[4] < now:
            if order == "late" and rng.random() < 1 / 12:
                held.setdefault(n + 2, []).append(pending)
            else:
                batch.append(pending)
            pending = next(it, None)
        half = len(batch) // 2
        out += [(now, batch[:half]), (now, batch[half:])]  # two messages, judged after each
    return out


@pytest.mark.parametrize("order", ["in time", "late", "shuffled"])
def test_judging_from_stored_facts_is_judging_every_event(month: Month, order: str) -> None:
    store = Store(month)
    procs = dict(month.procedures)
    code = next(iter(sorted(procs)))
    limit = procs[code].time_limit_wd
    rng = random.Random(3)
    for n, (now, batch) in enumerate(arrivals(month, order)):
        store.receive(batch)
        if n % 7 == 3:  # a procedure's time limit changes: every dossier flagged (as a declared day does)
            procs[code] = replace(procs[code], time_limit_wd=(limit or 0) + n % 3)
            store.flag_all()
        elif n % 5 == 2:  # ratings arrive: some dossiers due from a past instant, their events unchanged
            store.feedback_at(rng.sample(sorted(store.recheck), len(store.recheck) // 4), now - timedelta(hours=1))
        store.receive(batch[: len(batch) // 10])  # a redelivery: nothing new
        ids, judged = store.judge(now, procs)
        assert_as_if_folded(store, ids, judged, now, procs)
    assert store.paths["full"] and store.paths["extended"] and store.paths["stored"], store.paths
    if order == "in time":  # a live stream: re-judged dossiers are extended (refolded: an instant shared)
        assert store.paths["extended"] > 10 * store.paths["refolded"], store.paths
    else:
        assert store.paths["refolded"], store.paths
