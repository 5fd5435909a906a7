"""``sqi simulate``: back-fill history and/or stream live activity through the gateway.

Examples::

    sqi simulate --months 3 --seed 7                 # history ending now, sent to the gateway
    sqi simulate --days 30 --scale 0.1 --out ev.ndjson --end 2026-10-31 --answer-key key.json
    sqi simulate --rate 50 --duration 600            # live activity
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import os
import signal
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from sim.clock import DAY, OFFSET, date_of, day_of
from sim.generate import Anomalies, Config, Generator, estimate_events
from sim.live import LiveOptions, run_live
from sim.progress import Progress
from sim.send import Sender, SendError
from sim.world import build_world


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sqi simulate", description="Simulated dossier events for SQI.")
    span = p.add_mutually_exclusive_group()
    span.add_argument("--months", type=int, help="back-fill N months of history ending now (or --end)")
    span.add_argument("--days", type=int, help="back-fill N days of history ending now (or --end)")
    p.add_argument("--end", type=date.fromisoformat, help="history ends at the end of this day (YYYY-MM-DD)")
    p.add_argument("--rate", type=float, help="then stream live activity at about R events/s")
    p.add_argument(
        "--then-live",
        action="store_true",
        help="accepted for clarity: history then live is what --months/--days with --rate do",
    )
    p.add_argument("--duration", type=float, help="live streaming for this many seconds (default: until Ctrl-C)")
    p.add_argument("--seed", type=int, default=2025, help="everything is reproducible from it (default 2025)")
    p.add_argument("--scale", type=float, default=1.0, help="volume factor; 1 ≈ 1.1 million events a month")
    p.add_argument("--out", type=Path, help="write the NDJSON stream to FILE instead of sending it")
    p.add_argument("--answer-key", type=Path, help="write the simulator's intended counts to FILE (JSON)")
    p.add_argument("--gateway", default=os.environ.get("SQI_GATEWAY", "http://127.0.0.1:8000"))
    p.add_argument("--admin-token", default=os.environ.get("SQI_ADMIN_TOKEN"), help="admin JWT (or SQI_ADMIN_TOKEN)")
    p.add_argument("--keys", type=Path, help="JSON {source: api_key} to use instead of creating keys")
    p.add_argument(
        "--feedback",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also send ratings and petitions (default off)",
    )
    p.add_argument("--concurrency", type=int, default=4, help="concurrent requests (default 4)")
    p.add_argument("--batch-size", type=int, default=5000, help="events per request, at most 5000")
    p.add_argument("--no-anomalies", action="store_true", help="no rating burst, reopen or silent source")
    p.add_argument("--rating-burst", type=int, default=40, help="very_satisfied ratings from one address")
    p.add_argument("--reopen-rate", type=float, default=0.001, help="share of completed dossiers reopened")
    p.add_argument("--no-silent-source", action="store_true", help="no source goes silent for a day")
    p.add_argument(
        "--catalogue",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send the procedure catalogue (procedure.upserted; global: --no-catalogue keeps the platform's)",
    )
    p.add_argument(
        "--citizen-writes",
        type=int,
        default=8,
        help="at most N citizen-endpoint writes (petitions, reactions, a few ratings) in a back-fill (default 8)",
    )
    p.add_argument(
        "--citizen-per-minute",
        type=int,
        default=6,
        help="citizen writes a minute (the gateway allows 10 per address; default 6)",
    )
    p.add_argument(
        "--settle-until",
        type=date.fromisoformat,
        help="after the history, send the rest of its dossiers' lifecycles up to the end of this day "
        "(no new dossiers), so none is left open for later periods; the answer key stays the history's",
    )
    return p


def _window(args: argparse.Namespace) -> tuple[int, int]:
    """(t_start, t_end) in local seconds: N months or days ending now (with --out: at the end of
    yesterday) or at the end of --end."""
    now = int(time.time()) + OFFSET
    if args.end is not None:
        t_end = (day_of(args.end) + 1) * DAY - 1
    elif args.out:
        # A file is a record: it ends at the end of yesterday, so the same seed gives the same
        # bytes all day long, not only within the same second.
        t_end = (now // DAY) * DAY - 1
    else:
        t_end = now
    end_day = date_of(t_end // DAY)
    if args.days is not None:
        start = end_day - timedelta(days=args.days - 1)
    else:
        months = args.months or 1
        y, m = end_day.year, end_day.month - months
        while m < 1:
            y, m = y - 1, m + 12
        # The same day N months back (clipped to that month's length), then the day after it.
        start = date(y, m, min(end_day.day, calendar.monthrange(y, m)[1])) + timedelta(days=1)
    return day_of(start) * DAY, t_end


def _anomalies(args: argparse.Namespace) -> Anomalies:
    if args.no_anomalies:
        return Anomalies.none()
    return Anomalies(
        rating_burst=args.rating_burst, reopen_rate=args.reopen_rate, silent_source=not args.no_silent_source
    )


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def _run(args: argparse.Namespace) -> int:
    world = build_world(args.seed)
    history = args.months is not None or args.days is not None or args.rate is None
    sender: Sender | None = None
    if args.out is None:
        keys: dict[str, str] = orjson.loads(args.keys.read_bytes()) if args.keys else {}
        sender = Sender(
            args.gateway,
            admin_token=args.admin_token,
            keys=keys,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
            citizen_per_minute=args.citizen_per_minute,
        )
    try:
        if sender is not None and sender.keys and not args.admin_token:
            _log("simulate: no admin token: using the given keys, assuming the local offices exist")
        elif sender is not None:
            _log(
                f"simulate: preparing {len(world.local_offices())} local offices and "
                f"{len(world.sources)} integrator keys at {args.gateway}"
            )
            await sender.ensure_world(world)
        if history:
            await _history(args, world, sender)
        if args.rate:
            opts = LiveOptions(
                rate=args.rate,
                duration=args.duration,
                scale=args.scale,
                feedback=args.feedback,
                anomalies=_anomalies(args),
                catalogue=args.catalogue,
            )
            if args.out is not None:
                with args.out.open("ab") as f:
                    n = await run_live(world, args.seed, opts, out=f, log=_log)
            else:
                n = await run_live(world, args.seed, opts, sender=sender, log=_log)
            _log(f"live: {n:,} events" + (f"; {sender.stats.summary()}" if sender else ""))
    except SendError as e:
        _log(f"simulate: {e}")
        return 2
    finally:
        if sender is not None:
            await sender.aclose()
    return 0


async def _history(args: argparse.Namespace, world: Any, sender: Sender | None) -> None:
    t_start, t_end = _window(args)
    cfg = Config(
        seed=args.seed,
        t_start=t_start,
        t_end=t_end,
        scale=args.scale,
        feedback=args.feedback,
        anomalies=_anomalies(args),
        catalogue=args.catalogue,
        citizen_writes=args.citizen_writes,
    )
    gen = Generator(world, cfg)
    progress = Progress(estimate_events(world, cfg, gen.clock))
    _log(f"simulate: history {gen.clock.fmt(t_start)} .. {gen.clock.fmt(t_end)}, seed {args.seed}, scale {args.scale}")
    if args.out is not None:
        with args.out.open("wb") as f:
            buf: list[bytes] = []
            for _, line in gen.lines():
                buf.append(line)
                if len(buf) >= 5000:
                    f.write(b"".join(buf))
                    progress.advance(len(buf))
                    buf = []
            if buf:
                f.write(b"".join(buf))
                progress.advance(len(buf))
        progress.close()
        if gen.feedback:
            side = args.out.with_name(args.out.name + ".feedback.ndjson")
            side.write_bytes(b"".join(orjson.dumps(i, option=orjson.OPT_SORT_KEYS) + b"\n" for i in gen.feedback))
    else:
        assert sender is not None
        sender.progress = progress
        await sender.send_lines(gen.lines())
        progress.close()
        _log(f"simulate: {sender.stats.summary()}")
        for r in sender.stats.first_rejections:
            _log(f"  rejected {r.get('source')} #{r.get('index')} {r.get('event_id')}: {r.get('errors')}")
        if gen.feedback:
            _log(f"simulate: sending {len(gen.feedback):,} ratings, petitions and reactions")
            await sender.send_feedback(world, gen.feedback)
            _log(f"simulate: {sender.stats.summary()}")
    if args.settle_until is not None:
        await _settle(args, world, sender, cfg)
    if args.answer_key is not None:
        meta = {
            "seed": args.seed,
            "scale": args.scale,
            "start": gen.clock.fmt(t_start),
            "end": gen.clock.fmt(t_end),
            "offices": {o.code: o.traits() for o in world.offices},
        }
        args.answer_key.write_bytes(gen.key.to_json(meta))


async def _settle(args: argparse.Namespace, world: Any, sender: Sender | None, cfg: Config) -> None:
    """The history's continuation: the same dossiers' later events, up to --settle-until.

    The same seed replays the window (every draw is per dossier, so the bytes are the same) and
    emits only what happens after it; dossiers received in the window finish, none is left open
    to be carried into every later period. Nothing new is received.
    """
    # Never past now: SQI refuses events more than a day in the future.
    t_settle = min((day_of(args.settle_until) + 1) * DAY - 1, int(time.time()) + OFFSET)
    if t_settle <= cfg.t_end:
        return
    cont = Generator(
        world,
        replace(
            cfg,
            t_end=t_settle,
            t_receive_end=cfg.t_end,
            t_emit_after=cfg.t_end,
            feedback=False,
            catalogue=False,
        ),
    )
    _log(f"simulate: settling the history's dossiers until {cont.clock.fmt(t_settle)}")
    if args.out is not None:
        with args.out.open("ab") as f:
            for _, line in cont.lines():
                f.write(line)
    else:
        assert sender is not None
        sender.progress = None
        await sender.send_lines(cont.lines())
        _log(f"simulate: {sender.stats.summary()}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or args.batch_size > 5000:
        build_parser().error("--batch-size must be between 1 and 5000")
    # `sqi up` stops us with SIGTERM: treat it like Ctrl-C so the summary still prints.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        _log("simulate: interrupted")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
