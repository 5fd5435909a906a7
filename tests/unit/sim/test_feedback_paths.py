"""How the simulator's feedback enters SQI, the catalogue switch and settling a history."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import orjson

from services.feedback.domain.categories import CATEGORY_CODES
from sim.cli import main
from sim.clock import DAY
from sim.generate import Anomalies, Config, Generator
from sim.world import World

from .conftest import OCT_END, OCT_START


def test_catalogue_can_be_switched_off_and_nothing_else_changes(world: World) -> None:
    cfg = Config(seed=3, t_start=OCT_START, t_end=OCT_START + 10 * DAY - 1, scale=0.01)
    on = list(Generator(world, cfg).lines())
    off = list(Generator(world, replace(cfg, catalogue=False)).lines())
    assert not any(b'"procedure.upserted"' in line for _, line in off)
    assert [x for x in on if b'"procedure.upserted"' not in x[1]] == off


def test_most_ratings_are_imported_and_citizen_writes_are_bounded(world: World) -> None:
    cfg = Config(
        seed=5, t_start=OCT_START, t_end=OCT_END, scale=0.02, feedback=True, anomalies=Anomalies(rating_burst=6)
    )
    free = Generator(world, cfg)
    free_lines = list(free.lines())
    bounded = Generator(world, replace(cfg, citizen_writes=5))
    assert list(bounded.lines()) == free_lines  # the budget never shifts the event stream

    via = Counter(i["via"] for i in free.feedback if i["kind"] == "rating" and not i.get("burst"))
    assert via["import"] > 20 * via["citizen"] > 0
    assert all(i["via"] == "citizen" for i in free.feedback if i["kind"] != "rating" or i.get("burst"))
    assert all(
        i["source"] == world.office(i["body"]["dossier_id"].split("-", 1)[0]).source
        for i in free.feedback
        if i["kind"] == "rating" and i["via"] == "import"
    )

    citizen = Counter(i["kind"] for i in bounded.feedback if i["via"] == "citizen" and not i.get("burst"))
    assert citizen["rating"] == 2 and citizen["petition"] + citizen["reaction"] == 3  # half for ratings
    # The same dossiers are rated either way; over the budget a citizen's rating is imported.
    rated = sorted(i["body"]["dossier_id"] for i in free.feedback if i["kind"] == "rating")
    assert sorted(i["body"]["dossier_id"] for i in bounded.feedback if i["kind"] == "rating") == rated
    assert len([i for i in bounded.feedback if i.get("burst")]) == 6  # the burst is not budgeted


def test_petitions_use_the_feedback_services_categories(october: tuple[Generator, list[dict]]) -> None:
    gen, _ = october
    petitions = [i for i in gen.feedback if i["kind"] == "petition"]
    assert petitions
    assert {p["body"]["category"] for p in petitions} <= set(CATEGORY_CODES)


def test_the_key_counts_imported_ratings_only(october: tuple[Generator, list[dict]]) -> None:
    gen, _ = october
    total: Counter[str] = Counter()
    for months in gen.key.units.values():
        total.update(months.get("2026-10", {}))
    imported_dissatisfied = {
        i["body"]["dossier_id"]
        for i in gen.feedback
        if i["kind"] == "rating" and i["via"] == "import" and i["body"]["level"] == "dissatisfied"
    }
    citizen_dissatisfied = [
        i
        for i in gen.feedback
        if i["kind"] == "rating" and i["via"] == "citizen" and i["body"]["level"] == "dissatisfied"
    ]
    assert imported_dissatisfied and citizen_dissatisfied
    # Every rated dossier was completed in October, so handled in it; a citizen's rating is dated
    # by SQI at arrival and cannot count for October, nor can a petition.
    assert total["handled_rated_dissatisfied"] == len(imported_dissatisfied)
    assert total["handled_petitioned"] == 0


def test_settling_continues_the_same_dossiers_to_their_end(world: World) -> None:
    end = OCT_START + 15 * DAY - 1
    settle = OCT_END + 62 * DAY
    base = Config(seed=8, t_start=OCT_START, t_end=end, scale=0.01, anomalies=Anomalies.none(), catalogue=False)
    history = [line for _, line in Generator(world, base).lines()]
    cont = [
        line for _, line in Generator(world, replace(base, t_end=settle, t_receive_end=end, t_emit_after=end)).lines()
    ]
    whole = [line for _, line in Generator(world, replace(base, t_end=settle, t_receive_end=end)).lines()]
    assert sorted(history + cont) == sorted(whole)  # the same bytes: duplicates, never conflicts
    events = [orjson.loads(x) for x in cont]
    assert events and all(e["occurred_at"] > "2026-10-15T23:59:59+07:00" for e in events)
    assert not any(e["type"] == "dossier.received" for e in events)
    # After settling, every dossier's clock has ended: completed, withdrawn or an unanswered request.
    kinds: dict[str, set[str]] = defaultdict(set)
    for line in whole:
        e = orjson.loads(line)
        kinds[e["data"]["dossier_id"]].add(e["event_id"].rsplit(":", 1)[1])
    open_ = [
        d
        for d, k in kinds.items()
        if not k & {"cmp", "wd"} and not ("sup1" in k and "supr1" not in k) and not ("sup2" in k and "supr2" not in k)
    ]
    assert not open_, open_[:5]


def test_cli_no_catalogue_and_settle_until(tmp_path: Path) -> None:
    out = tmp_path / "ev.ndjson"
    args = ["--days", "5", "--end", "2026-10-10", "--scale", "0.01", "--seed", "4", "--no-anomalies"]
    assert main([*args, "--no-catalogue", "--settle-until", "2026-12-31", "--out", str(out)]) == 0
    events = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert not any(e["type"] == "procedure.upserted" for e in events)
    later = [e for e in events if e["occurred_at"] > "2026-10-10T23:59:59+07:00"]
    assert later and not any(e["type"] == "dossier.received" for e in later)
    assert len({(e["source"], e["event_id"]) for e in events}) == len(events)


def test_a_transferred_dossier_is_withdrawn_after_its_transfer(october: tuple[Generator, list[dict]]) -> None:
    _, events = october
    at: dict[tuple[str, str], str] = {
        (e["data"]["dossier_id"], e["type"]): e["occurred_at"]
        for e in events
        if e["type"] in ("dossier.transferred", "dossier.withdrawn")
    }
    both = [d for d, t in at if t == "dossier.withdrawn" and (d, "dossier.transferred") in at]
    assert all(at[(d, "dossier.transferred")] < at[(d, "dossier.withdrawn")] for d in both)
