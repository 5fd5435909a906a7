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
  was last judged (its latest: it sorts after the others, as most of a live stream's do), against
  the facts and contributions of that last judging (its facts stored again) — what each event of
  a live stream costs. Judging extends the stored facts by the new event: the claim hands over
  the stored facts as jsonb prints them, the event read brings the new row only, with the count
  of the older ones (``judging.plan`` and ``judging.unfolded``, on the event loop in the worker,
  are timed too);
* ``due``: every dossier judged again a day later with no new event (time alone changes its
  verdicts, or feedback arrived): judged from its stored facts, no event read.

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

from services.scoring.adapters.tables import EPOCH  # noqa: E402
from services.scoring.application.judging import CHUNK, _judge_records, plan, unfolded  # noqa: E402
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
    """One claimed chunk's inputs: its claimed rows (as ``_CLAIM`` returns them), every event row
    of its dossiers (``events``: what a checkout that folds every event reads) and the rows this
    checkout's judging reads (``read``, as ``_EVENTS`` returns them: of a dossier with stored facts,
    its rows after their mark only; of one judged as stored, none), its feedback and stored
    contributions."""

    ids: list[str]
    claimed: list[Row]
    events: list[Row]
    read: list[Row]
    ratings: list[Row]
    petitions: list[Row]
    stored: list[Row]
    full: list[Row]  # every row of the dossiers judging plans to fold in full (``_EVENTS``)

    def plain(self) -> tuple[Any, ...]:
        return (self.ids, self.claimed, self.events, self.read, self.ratings, self.petitions, self.stored, self.full)


def chunks(
    month: Month,
    ids: Sequence[str],
    stored: dict[str, list[Row]],
    facts: dict[str, tuple[str, datetime, int]],
    flag: datetime,
) -> list[Chunk]:
    """Chunks of ``ids`` with their stored contributions and facts (text as jsonb prints it, the
    mark), flagged with ``flag`` (the epoch: their events changed)."""
    out = []
    for k in range(0, len(ids), CHUNK):
        part = list(ids[k : k + CHUNK])
        claimed = [(i, flag, None, None, *facts.get(i, (None, None, None))) for i in part]
        how = plan(claimed)
        out.append(
            Chunk(
                part,
                claimed,
                [r for i in part for r in month.events[i]],
                [r for i, w in how.newer.items() for r in newer_rows(month.events[i], i, w)],
                [r for i in part for r in month.ratings.get(i, ())],
                [r for i in part for r in month.petitions.get(i, ())],
                [r for i in part for r in stored.get(i, ())],
                [r for i in how.full for r in month.events[i]],
            )
        )
    return out


def newer_rows(rows: list[Row], dossier_id: str, mark: datetime) -> list[Row]:
    """A dossier's rows as ``judging._NEWER_EVENTS`` returns them: those after the mark with the
    count of those up to it, or one row of nulls with the count."""
    older = sum(1 for r in rows if r[4] <= mark)
    return [(*r, older) for r in rows if r[4] > mark] or [(dossier_id, *[None] * 5, older)]


def judge_chunk_cpu(c: Chunk, procedures: dict[str, Procedure], now: datetime, calendar: CachedCalendar) -> Any:
    """What ``judging.judge_chunk`` computes for a chunk: its plan, the check of the rows read
    (a dossier whose older rows changed reads every row), ``_judge_records``."""
    how = plan(c.claimed)
    rows = c.read
    refold = unfolded(how, rows)
    if refold:
        rows = [r for r in rows if r[0] not in refold] + [r for r in c.events if r[0] in refold]
        how.fold_in_full(refold)
    rows = rows + c.full
    return _judge_records(c.ids, rows, c.ratings, c.petitions, c.stored, how.stored, procedures, now, calendar)


def judge(month: Month, work: list[Chunk], calendar: CachedCalendar, now: datetime | None = None) -> list[Any]:
    return [judge_chunk_cpu(c, month.procedures, now or month.now, calendar) for c in work]


def stored_rows(results: list[Any]) -> dict[str, list[Row]]:
    """The contribution rows a judging stored, by dossier, as ``_OLD`` reads them."""
    out: dict[str, list[Row]] = {}
    for judged, _ in results:
        for c in judged.contributions:
            out.setdefault(c.dossier_id, []).append(
                (c.dossier_id, c.period, c.unit_code, c.procedure_code, c.flags, c.handling_days)
            )
    return out


def stored_facts(results: list[Any]) -> dict[str, tuple[str, datetime, int]]:
    """The facts a judging stored, as the claim reads them: jsonb's text, the mark."""
    out = {}
    for judged, _ in results:
        for i, f in judged.facts.items():
            doc = orjson.loads(f[4])
            out[i] = (jsonb_text(doc), datetime.fromisoformat(doc["folded_through"]), doc["folded_events"])
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
# with the code of the checkout it runs in — one that judges from stored facts (judging.plan)
# as ``judge_chunk_cpu`` does, an older one from every event; one round per line on stdin, CPU
# µs per dossier out.
_WORKER = """
import gc, pickle, sys, time
sys.path.insert(0, ".")
from services.scoring.application import judging
from services.scoring.domain.calendar_cache import CachedCalendar
with open(sys.argv[1], "rb") as f:
    procedures, cases = pickle.load(f)
calendar = CachedCalendar()
def judge(work, now):
    for ids, claimed, events, read, ratings, petitions, stored, full in work:
        if not hasattr(judging, "plan"):
            judging._judge_records(ids, events, ratings, petitions, stored, set(ids), procedures, now, calendar)
            continue
        how = judging.plan(claimed)
        refold = judging.unfolded(how, read)
        if refold:
            read = [r for r in read if r[0] not in refold] + [r for r in events if r[0] in refold]
            how.fold_in_full(refold)
        read = read + full
        judging._judge_records(ids, read, ratings, petitions, stored, how.stored, procedures, now, calendar)
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
    first = chunks(month, ids, {}, {}, EPOCH)

    # Live: each dossier with ≥ 2 events, last judged before its latest stored event arrived.
    again = [i for i in ids if len(month.events[i]) >= 2]
    before = Month(
        month.procedures,
        {i: sorted(month.events[i], key=lambda r: r[4])[:-1] for i in again},
        month.ratings,
        month.petitions,
        month.now,
    )
    previous = judge(before, chunks(before, again, {}, {}, EPOCH), calendar)
    live = chunks(month, again, stored_rows(previous), stored_facts(previous), EPOCH)

    # Due: every dossier judged again a day later, no event new since its last judging.
    judged = judge(month, first, calendar)
    later = month.now + timedelta(days=1)
    due = chunks(month, ids, stored_rows(judged), stored_facts(judged), later - timedelta(hours=1))

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
