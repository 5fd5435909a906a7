"""Through PostgreSQL: judging a dossier whose events did not change from its stored facts
stores and judges what folding every stored event does.

A simulated October (scale 0.01) arrives through the real handler in messages of 200, in time
order with one event in twelve held back two judging instants (out of order) and a few
redelivered, judged (``judge_due``) after each instant's messages. Midway a procedure's time
limit changes (the catalogue handler flags its dossiers), ratings arrive (their dossiers due from
the rating's instant), the calendar flags every dossier, and a dossier whose later events make
it unjudgeable is set aside and then flagged again. After every judging, each dossier's stored
facts must be the fold of all its stored events and its stored contributions of the history
window those of judging that fold at the instant; both paths (folded, from stored facts) taken.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.scoring.adapters.calendar_store import rejudge_everything
from services.scoring.adapters.repository import feedback_of_rows, load_procedures
from services.scoring.application import judging
from services.scoring.application.judging import _event, in_window, judge_due, judge_rows
from services.scoring.bootstrap import Scoring
from services.scoring.domain.contributions import Contribution
from services.scoring.domain.period_labels import history_floor
from services.scoring.handlers.messages import apply_dossier_events, apply_procedure_events, apply_rating, apply_units
from shared.contracts import RawEvent
from shared.contracts.feedback import RatingSubmitted
from shared.db import driver_connection
from sim.clock import DAY, day_of
from sim.generate import Anomalies, Config, Generator
from sim.world import build_world

from .test_incremental import SEED, sim_units

pytestmark = pytest.mark.integration

OCT_START = day_of(datetime(2026, 10, 1).date()) * DAY
OCT_END = day_of(datetime(2026, 11, 1).date()) * DAY - 1
INSTANTS = [datetime(2026, 9, 30, 17, tzinfo=UTC) + timedelta(days=d, hours=10) for d in range(1, 32, 3)] + [
    datetime(2026, 11, 20, 2, tzinfo=UTC)
]


def october() -> list[RawEvent]:
    gen = Generator(
        build_world(SEED),
        Config(seed=SEED, t_start=OCT_START, t_end=OCT_END, scale=0.01, anomalies=Anomalies.none()),
    )
    return [RawEvent(**orjson.loads(line)) for _, line in gen.lines()]


def arrivals(events: list[RawEvent]) -> Iterator[tuple[datetime, list[RawEvent]]]:
    """Each instant with the events that arrived before it: those that occurred before it, but one
    in twelve two instants late."""
    rng = random.Random(5)
    dossier_events = sorted(
        (e for e in events if e.type.startswith("dossier.")), key=lambda e: datetime.fromisoformat(e.occurred_at)
    )
    held: dict[int, list[RawEvent]] = defaultdict(list)
    k = 0
    for n, now in enumerate(INSTANTS):
        batch = held.pop(n, [])
        while k < len(dossier_events) and datetime.fromisoformat(dossier_events[k].occurred_at) < now:
            (held[n + 2] if rng.random() < 1 / 12 else batch).append(dossier_events[k])
            k += 1
        yield now, batch


@dataclass
class Stored:
    """What scoring stored: each dossier's event rows, facts text and contributions; the ratings."""

    events: dict[str, list[Any]]
    facts: dict[str, str | None]
    contributions: dict[str, set[Contribution]]
    ratings: list[Any]


async def stored_state(app: Scoring) -> Stored:
    async with app.sessions() as s:
        conn: Any = await driver_connection(s)
        out = Stored(defaultdict(list), {}, defaultdict(set), [])
        for r in await conn.fetch(
            "SELECT dossier_id, source, event_id, type, occurred_at, data::text FROM scoring.dossier_event"
        ):
            out.events[r[0]].append(tuple(r))
        out.facts = {r[0]: r[1] for r in await conn.fetch("SELECT dossier_id, facts::text FROM scoring.dossier")}
        for r in await conn.fetch(
            "SELECT dossier_id, period, unit_code, procedure_code, flags, handling_days FROM scoring.contribution"
        ):
            out.contributions[r[0]].add(Contribution(*r))
        out.ratings = [tuple(r) for r in await conn.fetch("SELECT dossier_id, level, rated_at FROM scoring.rating")]
    return out


async def assert_as_if_every_event_folded(app: Scoring, now: datetime) -> None:
    """Every dossier's stored facts are the fold of all its stored events (a set-aside one's aside),
    its stored contributions of the history window those of judging that fold at ``now``."""
    stored = await stored_state(app)
    async with app.sessions() as s:
        procedures = await load_procedures(s)
    feedback = feedback_of_rows(stored.ratings, [])
    events = {i: map(_event, rs) for i, rs in stored.events.items()}
    full = judge_rows(events, procedures, now, app.calendar, feedback)
    assert {i: orjson.loads(f[4]) for i, f in full.facts.items()} == {
        i: orjson.loads(f) for i, f in stored.facts.items() if f is not None and i not in full.unjudgeable
    }
    floor = history_floor(now)
    expected: dict[str, set[Contribution]] = defaultdict(set)
    for c in full.contributions:
        if in_window(c.period, floor):
            expected[c.dossier_id].add(c)
    rows = {i: {c for c in cs if in_window(c.period, floor)} for i, cs in stored.contributions.items()}
    assert {i: cs for i, cs in rows.items() if cs} == dict(expected)


class Paths:
    """Counts the dossiers judging folds and those it judges from their stored facts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts = {"folded": 0, "stored": 0}
        judge_records = judging._judge_records

        def counting(ids: list[str], rows: Any, ratings: Any, petitions: Any, stored: Any, facts: Any, *a: Any) -> Any:
            self.counts["stored"] += len(facts)
            self.counts["folded"] += len(ids) - len(facts)
            return judge_records(ids, rows, ratings, petitions, stored, facts, *a)

        monkeypatch.setattr(judging, "_judge_records", counting)


# A due time in year 1 (the calendar cannot move it): judged when received, set aside when answered.
POISON = [
    RawEvent(
        source="tms",
        event_id=f"poison-{n}",
        type=t,
        occurred_at=at,
        data={"dossier_id": "POISON-1", "procedure_code": "T.DKT.01", "unit_code": "CT"} | extra,
    )
    for n, (t, at, extra) in enumerate(
        [
            ("dossier.received", "2026-10-02T09:00:00+07:00", {}),
            ("dossier.supplement_requested", "2026-10-05T09:00:00+07:00", {}),
            ("dossier.supplement_received", "2026-10-06T09:00:00+07:00", {"due_at": "0001-01-01T00:00:00+07:00"}),
        ]
    )
]


async def test_judging_from_stored_facts_through_postgres(clean: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    app = clean
    paths = Paths(monkeypatch)
    events = october()
    procedure_events = [e for e in events if e.type == "procedure.upserted"]
    async with app.uow() as uow:
        await apply_units(sim_units(), uow, now=INSTANTS[0])
        await apply_procedure_events(procedure_events, uow, now=INSTANTS[0])
    rng = random.Random(9)
    for n, (now, batch) in enumerate(arrivals(events)):
        batch += [e for e in POISON if n == (1 if e.type == "dossier.received" else 3)]
        for k in range(0, len(batch), 200):
            async with app.uow() as uow:
                await apply_dossier_events(batch[k : k + 200], uow, now=now)
        async with app.uow() as uow:  # a redelivery: stores nothing, flags nothing
            await apply_dossier_events(batch[:20], uow, now=now)
        if n == 4:  # a procedure's time limit changes: the catalogue handler flags its dossiers
            e = procedure_events[0]
            data = {**e.data, "time_limit_wd": int(e.data.get("time_limit_wd") or 0) + 2}
            later = (datetime.fromisoformat(e.occurred_at) + timedelta(days=400)).isoformat()
            changed = e.model_copy(update={"event_id": e.event_id + "-v2", "occurred_at": later, "data": data})
            async with app.uow() as uow:
                await apply_procedure_events([changed], uow, now=now)
        if n in (5, 8):  # ratings: their dossiers due from the rating's instant, events unchanged
            async with app.sessions() as s:
                conn: Any = await driver_connection(s)
                ids = [r[0] for r in await conn.fetch("SELECT dossier_id FROM scoring.dossier WHERE facts IS NOT NULL")]
            async with app.uow() as uow:
                for i, dossier_id in enumerate(rng.sample(sorted(ids), len(ids) // 5)):
                    rated = RatingSubmitted(
                        rating_id=f"{dossier_id}-{n}",
                        dossier_id=dossier_id,
                        unit_code=None,
                        level="dissatisfied" if i % 3 == 0 else "satisfied",
                        criteria={},
                        origin="citizen",
                        rated_at=now - timedelta(hours=1),
                        replaced=False,
                    )
                    await apply_rating(rated, uow, now=now)
        if n in (6, 9):  # a declared day: every dossier judged again
            async with app.uow() as uow:
                await rejudge_everything(uow.session)
        async with app.uow() as uow:
            await judge_due(uow.session, now=now, calendar=app.calendar, procedures=await load_procedures(uow.session))
        await assert_as_if_every_event_folded(app, now)
    assert paths.counts["folded"] and paths.counts["stored"], paths.counts
    async with app.sessions() as s:
        conn = await driver_connection(s)
        assert await conn.fetchval("SELECT unjudgeable FROM scoring.dossier WHERE dossier_id = 'POISON-1'")
