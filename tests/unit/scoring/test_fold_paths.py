"""Judging a dossier whose events did not change from its stored facts gives exactly what folding
every event gives.

The simulated October of :mod:`test_judging_sameness` (with its ratings, petitions and odd
dossiers) arrives in batches — in time order as a live stream, in time order with one event in
twelve held back (out of order), and shuffled — into a store that keeps what ``scoring.dossier``
and ``scoring.dossier_event`` keep. After each batch the due dossiers are claimed and judged
through judging's own steps (the claim's choice of stored facts, ``_judge_records``); some
instants flag every dossier after a procedure's time limit changed (``REJUDGE``, as the
catalogue handler and a declared day do, set-aside dossiers too), or make some dossiers due by
feedback — even set-aside ones, which the handler skips. Each judged dossier's contributions, recheck instant (value and
zone), set-aside reason, and the stored facts text after the judging must equal those of folding
all its stored events, and both paths must be taken. And stored facts read back are the facts
stored, for every dossier of the month, as PostgreSQL's jsonb hands them over.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from bench.judging import jsonb_text
from services.scoring.adapters.codec import FOLD_VERSION, facts_from_json, facts_json
from services.scoring.adapters.tables import EPOCH, REJUDGE
from services.scoring.application.judging import Judged, _event, _judge_records, judge_rows
from services.scoring.domain import Procedure, fold_dossier
from services.scoring.domain.calendar_cache import CachedCalendar

from .test_judging_sameness import Month

Row = tuple[Any, ...]


@pytest.fixture(scope="module")
def month() -> Month:
    return Month()


def test_stored_facts_read_back_are_the_facts(month: Month) -> None:
    checked = 0
    for dossier_id, rows in month.rows.items():
        facts = fold_dossier(dossier_id, map(_event, rows), month.procedures)
        if facts is None:
            continue
        text = facts_json(facts)
        stored = facts_from_json(orjson.loads(jsonb_text(orjson.loads(text))), month.procedures)
        assert stored == facts and facts_json(stored) == text
        assert {r and r.utcoffset() for r in (stored.received_due_at, *(s.due_at for s in stored.steps))} == {
            r and r.utcoffset() for r in (facts.received_due_at, *(s.due_at for s in facts.steps))
        }
        checked += 1
    assert checked > 1000


class Store:
    """``scoring.dossier`` and ``scoring.dossier_event`` as judging reads and writes them."""

    def __init__(self, month: Month) -> None:
        self.month = month
        self.events: dict[str, dict[tuple[str, str], Row]] = {}
        self.facts: dict[str, str] = {}  # the stored facts text
        self.recheck: dict[str, datetime | None] = {}
        self.unjudgeable: set[str] = set()
        self.paths = {"folded": 0, "stored": 0}

    def receive(self, rows: Iterable[Row]) -> None:
        """The consumer: a row per identity (a repeat changes nothing), the dossier flagged."""
        for r in rows:
            stored = self.events.setdefault(r[0], {})
            if (r[1], r[2]) not in stored:
                stored[(r[1], r[2])] = r
                self.recheck[r[0]] = EPOCH
                self.unjudgeable.discard(r[0])

    def flag(self, ids: Iterable[str], at: datetime) -> None:
        """``least(recheck_at, at)``: feedback at ``at``, or ``REJUDGE`` (catalogue, calendar)."""
        for i in ids:
            r = self.recheck.get(i)
            self.recheck[i] = at if r is None else min(r, at)

    def judge(self, now: datetime, procedures: dict[str, Procedure]) -> tuple[list[str], Judged]:
        """What judge_chunk does, on this store."""
        due = sorted((r, i) for i, r in self.recheck.items() if r is not None and r < now)
        ids = [i for _, i in due]
        facts = {}  # as the claim hands them over
        for r, i in due:
            doc = self.facts.get(i)
            if (
                r > EPOCH
                and i not in self.unjudgeable
                and doc is not None
                and orjson.loads(doc).get("fold_version") == FOLD_VERSION
            ):
                facts[i] = jsonb_text(orjson.loads(doc))
        rows = [r for i in ids if i not in facts for r in self.events[i].values()]
        self.paths["stored"] += len(facts)
        self.paths["folded"] += len(ids) - len(facts)
        ratings = [r for r in self.month.ratings if r[0] in set(ids)]
        petitions = [r for r in self.month.petitions if r[0] in set(ids)]
        judged, _ = _judge_records(ids, rows, ratings, petitions, [], facts, procedures, now, CachedCalendar())
        for i, f in judged.facts.items():
            self.facts[i] = f[4]
        for i, r in judged.rechecks.items():
            self.recheck[i] = r
        for i in judged.unjudgeable:  # _SET_ASIDE: its facts as they were
            self.recheck[i] = None
            self.unjudgeable.add(i)
        return ids, judged


def assert_as_if_folded(store: Store, ids: list[str], judged: Judged, now: datetime, procs: dict[str, Any]) -> None:
    """The judged dossiers as folding every stored event of theirs judges them, and their stored
    facts as that fold stores them."""
    events = {i: map(_event, store.events[i].values()) for i in ids}
    full = judge_rows(events, procs, now, CachedCalendar(), store.month.feedback)
    key = {c.dossier_id: n for n, c in enumerate(full.contributions)}  # judging's order is not the claim's
    assert sorted(judged.contributions, key=lambda c: key[c.dossier_id]) == full.contributions
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
    """The batches and the instant each is judged at: by occurrence (a live stream), by occurrence
    with one event in twelve held back two instants (out of order), or shuffled."""
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
        if n % 7 == 3:  # a procedure's time limit changes: every dossier judged again
            procs[code] = replace(procs[code], time_limit_wd=(limit or 0) + n % 3)
            store.flag(sorted(store.recheck), REJUDGE)
        elif n % 5 == 2:  # ratings arrive: some dossiers due from a past instant, their events unchanged
            store.flag(rng.sample(sorted(store.recheck), len(store.recheck) // 4), now - timedelta(hours=1))
        store.receive(batch[: len(batch) // 10])  # a redelivery: nothing new
        ids, judged = store.judge(now, procs)
        assert_as_if_folded(store, ids, judged, now, procs)
    assert store.paths["folded"] and store.paths["stored"], store.paths
