"""The simulated world: units (cơ quan thuế), local offices (Thuế cơ sở), officers, procedures.

Everything is drawn from the seed, so the same ``--seed`` builds the same world. Reference data
is loaded from ``data/reference/*.csv`` (never copied into code).
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

REFERENCE_DIR = Path(os.environ.get("SQI_REFERENCE_DIR", Path(__file__).resolve().parents[1] / "data" / "reference"))

#: About this many local offices in the whole country (the reference README says "roughly 350").
TARGET_LOCAL_OFFICES = 350


@dataclass(frozen=True)
class Procedure:
    """A tax procedure (thủ tục hành chính) from procedures.csv."""

    code: str
    name: str
    field: str
    levels: tuple[str, ...]
    time_limit_wd: int | None
    online_level_offered: str
    has_fee: bool
    returns_document: bool
    target: str


@dataclass
class Office:
    """A unit that receives dossiers, with the traits that make its scores differ."""

    code: str
    name: str
    level: str
    parent_code: str | None
    province_code: str
    source: str
    weight: float  # relative dossier volume
    officers: list[str] = field(default_factory=list)
    slow_officers: frozenset[str] = frozenset()
    backlog_prone: bool = False  # hay trễ hạn
    slow_digitise: bool = False  # số hóa chậm
    low_online: bool = False  # ít nộp trực tuyến
    sync_lag: bool = False  # đồng bộ chậm lên Cổng DVCQG
    small: bool = False  # ít hồ sơ
    sends_due_at: bool = True  # the dossier system sends ngày hẹn trả itself

    def traits(self) -> list[str]:
        names = ("backlog_prone", "slow_digitise", "low_online", "sync_lag", "small")
        return [n for n in names if getattr(self, n)]


@dataclass
class World:
    """The units, offices and procedures of one seed."""

    seed: int
    units: list[dict[str, str]]  # rows of units.csv
    offices: list[Office]
    procedures: list[Procedure]
    criteria: list[str]
    sources: dict[str, list[str]]  # source -> unit codes its key covers

    def office(self, code: str) -> Office:
        return self._by_code[code]

    def __post_init__(self) -> None:
        self._by_code = {o.code: o for o in self.offices}

    def local_offices(self) -> list[Office]:
        return [o for o in self.offices if o.level == "local"]


def _read(name: str) -> list[dict[str, str]]:
    with (REFERENCE_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def load_procedures() -> list[Procedure]:
    out = []
    for r in _read("procedures.csv"):
        tl = r["time_limit_wd"].strip()
        out.append(
            Procedure(
                code=r["procedure_code"],
                name=r["name"],
                field=r["field"],
                levels=tuple(x.strip() for x in r["levels"].split(";") if x.strip()),
                time_limit_wd=int(tl) if tl else None,
                online_level_offered=r["online_level_offered"],
                has_fee=r["has_fee"].strip().lower() == "true",
                returns_document=r["returns_document"].strip().lower() == "true",
                target=r["target"],
            )
        )
    return out


def short_province_name(full: str) -> str:
    """ "Thuế Thành phố Hà Nội" -> "Hà Nội"; "Thuế tỉnh Lai Châu" -> "Lai Châu"."""
    for prefix in ("Thuế Thành phố ", "Thuế thành phố ", "Thuế tỉnh ", "Thuế Tỉnh "):
        if full.startswith(prefix):
            return full[len(prefix) :]
    return full


def source_for(province_code: str) -> str:
    """One dossier system per province: ``P01`` -> ``tms-p01``; ``CT.DNL`` -> ``tms-ct-dnl``."""
    return "tms-" + province_code.lower().replace(".", "-")


def build_world(seed: int) -> World:
    """Build the world of ``seed``: units.csv plus ~350 generated local offices with traits."""
    rng = random.Random(f"world:{seed}")
    units = _read("units.csv")
    provinces = [u for u in units if u["level"] == "province" and u["approx_population_millions"].strip()]
    total_pop = sum(float(u["approx_population_millions"]) for u in provinces)
    offices: list[Office] = []
    sources: dict[str, list[str]] = {}
    for u in units:
        code = u["code"]
        pop = float(u["approx_population_millions"]) if u["approx_population_millions"].strip() else 0.0
        src = source_for(code)
        sources[src] = [code]
        # The provincial office itself handles province-level procedures (a share of the volume);
        # HQ and the large-taxpayer office handle few, large dossiers.
        weight = pop * 0.15 if pop else (0.3 if u["level"] == "province" else 0.05)
        offices.append(_office(rng, code, u["name"], u["level"], u["parent_code"] or None, code, src, weight))
        if not pop:
            continue
        # ~350 local offices in proportion to population, at least 3 a province.
        n_local = max(3, round(TARGET_LOCAL_OFFICES * pop / total_pop))
        share = rng.lognormvariate(0, 0.35)
        raw = [rng.lognormvariate(0, 0.5) * share for _ in range(n_local)]
        scale = pop * 0.85 / sum(raw)
        short = short_province_name(u["name"])
        for i in range(n_local):
            lcode = f"{code}.L{i + 1:02d}"
            name = f"Thuế cơ sở {i + 1} {short}"
            offices.append(_office(rng, lcode, name, "local", code, code, src, raw[i] * scale))
    for o in offices:
        if o.small:
            o.weight *= 0.08
    return World(
        seed=seed,
        units=units,
        offices=offices,
        procedures=load_procedures(),
        criteria=[r["criterion_id"] for r in _read("rating_criteria.csv")],
        sources=sources,
    )


def _office(
    rng: random.Random,
    code: str,
    name: str,
    level: str,
    parent: str | None,
    province: str,
    source: str,
    weight: float,
) -> Office:
    n_officers = 3 + int(min(40, weight * 6)) if level == "local" else 6
    officers = [f"{code}.O{i + 1:02d}" for i in range(n_officers)]
    slow = frozenset(o for o in officers if rng.random() < 0.12)
    local = level == "local"
    return Office(
        code=code,
        name=name,
        level=level,
        parent_code=parent,
        province_code=province,
        source=source,
        weight=weight,
        officers=officers,
        slow_officers=slow,
        backlog_prone=rng.random() < 0.15,
        slow_digitise=rng.random() < 0.15,
        low_online=rng.random() < 0.15,
        sync_lag=rng.random() < 0.12,
        small=local and rng.random() < 0.08,
        # A third of the dossier systems leave ngày hẹn trả to SQI's own calendar.
        sends_due_at=rng.random() < 0.67,
    )
