"""Peak memory of a custom range's ranking: judged whole (before) against counted chunk by chunk (now).

    .venv/bin/python -m sim.cli --months 1 --end 2026-10-31 --seed 1 --scale 0.1 --out /tmp/m01.ndjson
    flock /tmp/sqi-heavy.lock .venv/bin/python bench/scoring_bench.py /tmp/m01.ndjson --keep --db sqi_bench_range
    flock /tmp/sqi-heavy.lock .venv/bin/python bench/range_memory.py --db sqi_bench_range

Per range and way, in a fresh process each (so the maximum resident size is that evaluation's),
warmed up by a one-day range the same way (imports, holiday calendars, caches: what a running API
has already): the Python heap's peak during the evaluation above what was allocated before it
(``tracemalloc``, every thread), the process's maximum resident size (warm-up included), the
dossiers handled (2.1's denominator at CT), the wall time and whether the score rows are equal.
``whole``: ``evaluate_live`` as the ranking used it (``load_inputs`` then ``evaluate_period``:
every dossier's facts and verdict at once); ``chunked``: ``evaluate_range_counts`` (the counters
and one chunk). Figures, not a test.
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.scoring.application import range_counts  # noqa: E402
from services.scoring.application.scoring_service import evaluate_live, rows_for  # noqa: E402
from services.scoring.bootstrap import bootstrap  # noqa: E402
from services.scoring.domain import parse_period  # noqa: E402
from services.scoring.settings import ScoringSettings  # noqa: E402
from shared import event_loop  # noqa: E402

RANGES = ("2026-10-15..2026-10-15", "2026-10-01..2026-10-07", "2026-10-01..2026-10-31")
NOW = "2026-11-05T09:00:00+07:00"
WARM_UP = "2026-10-31..2026-10-31"


async def measure(db: str, label: str, way: str, now: datetime) -> dict[str, object]:
    """One evaluation of ``label`` the ``way`` asked, in this process."""
    app = bootstrap(
        ScoringSettings(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}", environment="test")
    )
    period = parse_period(label)
    methodology = app.methodologies["tax-2025"]
    try:
        async with app.sessions() as s:
            # Warmed up as a running API is (imports, the holiday calendars, the working-day
            # cache): a tiny range the same way first, so the figure is the evaluation's own.
            warm = parse_period(WARM_UP)
            await evaluate_live(s, period=warm, now=now, calendar=app.calendar, verdicts=way == "whole")
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            t = time.perf_counter()
            ev = await evaluate_live(s, period=period, now=now, calendar=app.calendar, verdicts=way == "whole")
            wall = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1] - before
            tracemalloc.stop()
            rows = [r.as_read_row() for r in await rows_for(s, ev=ev, methodology=methodology)]
        dossiers = ev.counts["CT"]["2.1"].denominator if "CT" in ev.counts else 0
        return {
            "range": label,
            "way": way,
            "peak_mb": round(peak / 2**20, 1),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "handled": dossiers,
            "wall_s": round(wall, 2),
            "rows": [(r["unit_code"], str(r["total"]), r["dossiers"]) for r in rows],
        }
    finally:
        await app.dispose()


def child(args: argparse.Namespace) -> None:
    range_counts.CHUNK_DOSSIERS = args.chunk
    out = event_loop.run(measure(args.db, args.range, args.way, datetime.fromisoformat(args.now)))
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")


def parent(args: argparse.Namespace) -> None:
    print(f"chunk: {args.chunk} dossiers; database {args.db}; judged as of {args.now}")
    print(f"{'range':<24} {'way':<8} {'heap peak MB':>12} {'max RSS MB':>11} {'handled':>8} {'wall s':>7}")
    for label in args.ranges:
        found = {}
        for way in ("chunked", "whole"):
            argv = [sys.executable, __file__, "--child", "--db", args.db, "--now", args.now, "--range", label]
            argv += ["--chunk", str(args.chunk)]
            done = subprocess.run([*argv, "--way", way], check=True, capture_output=True, cwd=ROOT)
            r = orjson.loads(done.stdout.splitlines()[-1])
            found[way] = r
            print(f"{label:<24} {way:<8} {r['peak_mb']:>12} {r['max_rss_mb']:>11} {r['handled']:>8} {r['wall_s']:>7}")
        same = found["chunked"]["rows"] == found["whole"]["rows"]
        print(f"{'':<24} score rows equal: {same}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default="sqi_bench_range", help="a database loaded by bench/scoring_bench.py --keep")
    p.add_argument("--now", default=NOW, help="judging instant (ISO)")
    p.add_argument("--ranges", nargs="*", default=list(RANGES))
    p.add_argument("--chunk", type=int, default=range_counts.CHUNK_DOSSIERS, help="dossiers a chunk")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--range", help=argparse.SUPPRESS)
    p.add_argument("--way", choices=("whole", "chunked"), help=argparse.SUPPRESS)
    args = p.parse_args()
    child(args) if args.child else parent(args)


if __name__ == "__main__":
    main()
