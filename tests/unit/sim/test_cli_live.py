"""The command line (--out mode, no network) and the live stream's tick."""

from __future__ import annotations

from pathlib import Path

import orjson

from sim.cli import main
from sim.clock import DAY, day_of
from sim.live import LiveOptions, LiveStream
from sim.world import World


def test_out_is_reproducible_and_writes_the_answer_key(tmp_path: Path) -> None:
    args = ["--days", "10", "--end", "2026-10-20", "--scale", "0.01", "--seed", "4", "--feedback"]
    assert main([*args, "--out", str(tmp_path / "a.ndjson"), "--answer-key", str(tmp_path / "k.json")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.ndjson")]) == 0
    a = (tmp_path / "a.ndjson").read_bytes()
    assert a == (tmp_path / "b.ndjson").read_bytes()
    first = orjson.loads(a.splitlines()[0])
    assert first["type"] == "procedure.upserted"
    key = orjson.loads((tmp_path / "k.json").read_bytes())
    assert key["seed"] == 4 and key["start"].startswith("2026-10-11") and key["end"].startswith("2026-10-20T23:59:59")
    assert (tmp_path / "a.ndjson.feedback.ndjson").exists()


def test_live_tick_sends_about_the_rate_with_some_duplicates(world: World) -> None:
    from datetime import date

    now = day_of(date(2026, 10, 14)) * DAY + 10 * 3600
    stream = LiveStream(world, 3, LiveOptions(rate=50, scale=0.02, duplicate_share=0.1), now, lookback_days=3)
    assert stream.heap  # the history's own future is queued
    sent = []
    for i in range(20):
        sent += stream.tick(now + i, 50, float(i))
    assert 900 <= len(sent) <= 1100
    ids = [orjson.loads(line)["event_id"] for _, line in sent]
    assert len(ids) > len(set(ids))  # duplicates
    assert all(orjson.loads(line)["occurred_at"] <= "2026-10-14T10:00:20+07:00" for _, line in sent)


def test_out_without_end_gives_the_same_bytes_all_day(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """cli.md: --out with the same seed writes the same bytes, even hours apart on one day."""
    import time as time_module

    morning = 1_795_000_000.0 - (1_795_000_000 + 7 * 3600) % DAY + 2 * 3600  # 02:00 local
    outputs = []
    for at in (morning, morning + 9 * 3600):
        monkeypatch.setattr(time_module, "time", lambda at=at: at)
        out = tmp_path / f"{int(at)}.ndjson"
        assert main(["--days", "2", "--scale", "0.01", "--seed", "9", "--out", str(out)]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and outputs[0]
