"""Judging in process: CPU µs per dossier of the scoring worker's fold-and-judge step.

    flock /tmp/sqi-heavy.lock ./sqi bench judging [--scale 0.1 --days 28 --rounds 5 --feedback --profile]

What the refresher's worker thread does per chunk of 1,000 claimed dossiers
(``judging._judge_records``: decode the stored events, fold each dossier, judge it for the
running month, quarter and year, encode the facts of the changed ones, compare with the stored
contributions), on the simulator's events as the database hands them over (``data::text`` as
jsonb prints it, ``occurred_at`` in UTC), with the worker's calendar (the memoising one). No
database, no broker: the figure is the CPU that limits freshness under a live stream.

Three cases, each timed over ``--rounds`` rounds (CPU time of this process; min and median):

* ``first``: every dossier of the simulated month judged for the first time (changed, nothing
  stored), at the end of the history;
* ``live``: every dossier with at least two events, re-judged with one more event than when it
  was last judged (its facts folded again and stored), against the contributions of that last
  judging — what each event of a live stream costs;
* ``due``: every dossier judged again a day later with no new event (time alone changes its
  verdicts, or feedback arrived, or the catalogue or the calendar changed), against the
  contributions of the ``first`` judging: judged from the facts that judging stored, as the claim
  hands them over (jsonb's text), where a checkout that cannot folds every event again.

``--feedback`` adds the simulator's ratings and petitions (each dossier's rows, as judging reads them).

``--compare DIR`` judges the same chunks with another checkout's code (``DIR``, with its own
``.venv``: e.g. ``git worktree add --detach /tmp/base main``) and this one, each in its own
process, one round of each in turn: on a shared machine the neighbours' load moves both alike,
so the per-round ratio is steadier than two runs one after the other.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pickle
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.scoring.application.judging import CHUNK, _judge_records  # noqa: E402
from services.scoring.domain import Procedure  # noqa: E402
from services.scoring.domain.calendar_cache import CachedCalendar  # noqa: E402
from services.scoring.domain.events import procedure_from_data  # noqa: E402

Row = tuple[Any, ...]


def jsonb_text(value: Any) -> str:
    """``value`` as PostgreSQL prints a jsonb (``data::text``): keys by length then bytes,
    ``", "`` and ``": "`` separators — the text judging decodes."""

    def order(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: order(v[k]) for k in sorted(v, key=lambda k: (len(k.encode()), k.encode()))}
        if isinstance(v, list):
            return [order(x) for x in v]
        return v

    return json.dumps(order(value), ensure_ascii=False, separators=(", ", ": "))


@dataclass
class Month:
    """The simulated month as judging reads it from the database."""

    procedures: dict[str, Procedure]
    events: dict[str, list[Row]]  # dossier → its event rows, in stored (arrival) order
    ratings: dict[str, list[Row]]
    petitions: dict[str, list[Row]]
    now: datetime  # just after the last event: every fact known


def simulate(args: argparse.Namespace, out: Path) -> None:
    cmd = [sys.executable, "-m", "sim.cli", "--days", str(args.days), "--end", args.end]
    cmd += ["--seed", str(args.seed), "--scale", str(args.scale), "--out", str(out)]
    cmd += ["--feedback"] if args.feedback else []
    subprocess.run(cmd, cwd=ROOT, check=True, stderr=subprocess.DEVNULL)


def load(path: Path, feedback: bool) -> Month:
    procedures: dict[str, Procedure] = {}
    events: dict[str, list[Row]] = {}
    last = datetime.min.replace(tzinfo=UTC)
    with path.open("rb") as f:
        for line in f:
            e = orjson.loads(line)
            if e["type"] == "procedure.upserted":
                procedures[e["data"]["procedure_code"]] = procedure_from_data(e["data"])
                continue
            at = datetime.fromisoformat(e["occurred_at"]).astimezone(UTC)  # asyncpg's timestamptz
            last = max(last, at)
            did = e["data"]["dossier_id"]
            events.setdefault(did, []).append((did, e["source"], e["event_id"], e["type"], at, jsonb_text(e["data"])))
    ratings: dict[str, list[Row]] = {}
    petitions: dict[str, list[Row]] = {}
    side = path.with_name(path.name + ".feedback.ndjson")
    if feedback and side.exists():
        with side.open("rb") as f:
            for line in f:
                item = orjson.loads(line)
                did, at = item["body"].get("dossier_id"), datetime.fromtimestamp(item["t"], UTC)
                if did in events and item["kind"] == "rating":
                    ratings.setdefault(did, []).append((did, item["body"]["level"], at))
                elif did in events and item["kind"] == "petition":
                    petitions.setdefault(did, []).append((did, at))
    return Month(procedures, events, ratings, petitions, last + timedelta(seconds=1))


@dataclass
class Chunk:
    """One claimed chunk's inputs to ``_judge_records``: every event row of its dossiers
    (``events``), the stored facts of those judged from them (``facts``) and the event rows of
    the others (``unstored``: what judging reads)."""

    ids: list[str]
    events: list[Row]
    ratings: list[Row]
    petitions: list[Row]
    stored: list[Row]
    facts: dict[str, str]
    unstored: list[Row]

    def plain(self) -> tuple[Any, ...]:
        return (self.ids, self.events, self.ratings, self.petitions, self.stored, self.facts, self.unstored)


def chunks(
    month: Month,
    ids: Sequence[str],
    events: dict[str, list[Row]],
    stored: dict[str, list[Row]],
    facts: dict[str, str] | None = None,
) -> list[Chunk]:
    facts = facts or {}
    out = []
    for k in range(0, len(ids), CHUNK):
        part = list(ids[k : k + CHUNK])
        out.append(
            Chunk(
                part,
                [r for i in part for r in events[i]],
                [r for i in part for r in month.ratings.get(i, ())],
                [r for i in part for r in month.petitions.get(i, ())],
                [r for i in part for r in stored.get(i, ())],
                {i: facts[i] for i in part if i in facts},
                [r for i in part if i not in facts for r in events[i]],
            )
        )
    return out


def judge(month: Month, work: list[Chunk], calendar: CachedCalendar, now: datetime | None = None) -> list[Any]:
    return [
        _judge_records(
            c.ids, c.unstored, c.ratings, c.petitions, c.stored, c.facts, month.procedures, now or month.now, calendar
        )
        for c in work
    ]


def stored_facts(results: list[Any]) -> dict[str, str]:
    """The facts a judging stored, as the claim hands them over (jsonb's text)."""
    return {i: jsonb_text(orjson.loads(f[4])) for judged, _ in results for i, f in judged.facts.items()}


def stored_rows(results: list[Any]) -> dict[str, list[Row]]:
    """The contribution rows a judging stored, by dossier, as ``_OLD`` reads them."""
    out: dict[str, list[Row]] = {}
    for judged, _ in results:
        for c in judged.contributions:
            out.setdefault(c.dossier_id, []).append(
                (c.dossier_id, c.period, c.unit_code, c.procedure_code, c.flags, c.handling_days)
            )
    return out


def timed(run: Callable[[], object], rounds: int) -> list[float]:
    run()  # warm: the calendar's memo, the period caches
    out = []
    for _ in range(rounds):
        cpu = time.process_time()
        run()
        out.append(time.process_time() - cpu)
    return out


# A judging process for --compare: the chunks (plain tuples, pickled by this process) judged
# with the code of the checkout it runs in — from the stored facts where it can (its
# ``_judge_records`` takes them), else every dossier folded from its events; one round per line
# on stdin, CPU µs per dossier out.
_WORKER = """
import gc, inspect, pickle, sys, time
sys.path.insert(0, ".")
from services.scoring.application.judging import _judge_records
from services.scoring.domain.calendar_cache import CachedCalendar
with open(sys.argv[1], "rb") as f:
    procedures, cases = pickle.load(f)
calendar = CachedCalendar()
from_facts = list(inspect.signature(_judge_records).parameters)[5] == "facts"
def judge(work, now):
    for ids, events, ratings, petitions, stored, facts, unstored in work:
        if from_facts:
            _judge_records(ids, unstored, ratings, petitions, stored, facts, procedures, now, calendar)
        else:
            _judge_records(ids, events, ratings, petitions, stored, set(ids), procedures, now, calendar)
for work, _, now in cases.values():
    judge(work, now)  # warm
gc.collect()
gc.freeze()
print("ready", flush=True)
for line in sys.stdin:
    work, count, now = cases[line.strip()]
    cpu = time.process_time()
    judge(work, now)
    print((time.process_time() - cpu) / count * 1e6, flush=True)
"""


def compare(
    month: Month, cases: dict[str, tuple[list[Chunk], int, datetime]], other: Path, rounds: int, tmp: Path
) -> dict[str, dict[str, list[float]]]:
    """CPU µs per dossier of each case, this checkout's code and ``other``'s, rounds interleaved."""
    path = tmp / "chunks.pickle"
    plain = {name: ([c.plain() for c in work], count, now) for name, (work, count, now) in cases.items()}
    path.write_bytes(pickle.dumps((month.procedures, plain)))
    roots = {"this": ROOT, "other": other.resolve()}
    procs = {
        k: subprocess.Popen(
            [str(root / ".venv" / "bin" / "python"), "-c", _WORKER, str(path)],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k, root in roots.items()
    }
    out: dict[str, dict[str, list[float]]] = {name: {k: [] for k in procs} for name in cases}
    try:
        for k, p in procs.items():
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", f"{k} checkout failed to start"
        for _ in range(rounds):
            for name in cases:
                for k, p in procs.items():
                    assert p.stdin is not None and p.stdout is not None
                    p.stdin.write(name + "\n")
                    p.stdin.flush()
                    out[name][k].append(float(p.stdout.readline()))
    finally:
        for p in procs.values():
            if p.stdin is not None:
                p.stdin.close()
            p.wait()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./sqi bench judging", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="the simulator's volume (1 ≈ a country's month)")
    parser.add_argument("--days", type=int, default=28, help="days of simulated history")
    parser.add_argument("--end", default="2026-11-29", help="last day of the history (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per case")
    parser.add_argument("--feedback", action="store_true", help="with the simulator's ratings and petitions")
    parser.add_argument("--events", type=Path, help="an NDJSON the simulator wrote (instead of simulating)")
    parser.add_argument("--only", choices=("first", "live", "due"), help="time one case (e.g. under callgrind)")
    parser.add_argument("--compare", type=Path, metavar="DIR", help="also judge with DIR's code, rounds interleaved")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one live round")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sqi-bench-judging-") as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    path = args.events
    if path is None:
        path = tmp / "month.ndjson"
        simulate(args, path)
    month = load(path, args.feedback)
    calendar = CachedCalendar()  # the worker's (calendar_store.build_calendar with no declared days)
    ids = sorted(month.events)
    first = chunks(month, ids, month.events, {})

    # Live: each dossier with ≥ 2 events, last judged before its latest stored event arrived.
    again = [i for i in ids if len(month.events[i]) >= 2]
    before = {i: sorted(month.events[i], key=lambda r: r[4])[:-1] for i in again}
    previous = stored_rows(judge(month, chunks(month, again, before, {}), calendar))
    live = chunks(month, again, month.events, previous)

    # Due: every dossier judged again a day later, no event new since its first judging.
    judged = judge(month, first, calendar)
    later = month.now + timedelta(days=1)
    due = chunks(month, ids, month.events, stored_rows(judged), stored_facts(judged))

    # The month's rows stay alive here; the worker holds one chunk's. Frozen, the collector does not
    # walk them (as every process freezes its start-up heap, shared.heap).
    gc.collect()
    gc.freeze()
    n_rated = sum(1 for i in ids if i in month.ratings or i in month.petitions)
    source = args.events or f"scale {args.scale}, {args.days} days to {args.end}, seed {args.seed}"
    print(
        f"bench judging: {len(ids):,} dossiers, {sum(len(v) for v in month.events.values()):,} events, "
        f"{n_rated:,} with ratings or petitions; {source}, judged at {month.now.isoformat()}"
    )
    cases = {
        name: (work, count, now)
        for name, work, count, now in (
            ("first", first, len(ids), month.now),
            ("live", live, len(again), month.now),
            ("due", due, len(ids), later),
        )
        if args.only in (None, name)
    }
    if args.compare:
        figures = compare(month, cases, args.compare, args.rounds, tmp)
        for name, by in figures.items():
            this, other = by["this"], by["other"]
            ratios = sorted(o / t for o, t in zip(other, this, strict=True))
            print(
                f"  {name:<5} {cases[name][1]:>7,} dossiers, µs CPU per dossier (min / median): "
                f"{args.compare} {min(other):6.1f} / {statistics.median(other):6.1f}, "
                f"this {min(this):6.1f} / {statistics.median(this):6.1f}; "
                f"ratio per round {ratios[0]:.2f}–{ratios[-1]:.2f} (median {statistics.median(ratios):.2f})"
            )
        return 0
    for name, (work, count, now) in cases.items():
        rounds = timed(lambda work=work, now=now: judge(month, work, calendar, now), args.rounds)  # type: ignore[misc]
        each = [t / count * 1e6 for t in rounds]
        print(
            f"  {name:<5} {count:>7,} dossiers: {min(each):6.1f} µs CPU per dossier (min), "
            f"{statistics.median(each):6.1f} (median) over {args.rounds} rounds"
        )
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(judge, month, live, calendar)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
