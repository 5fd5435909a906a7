"""The event generator: dossiers (hồ sơ) of every office, day by day, as NDJSON lines.

Each (office, day) draws from its own ``random.Random`` seeded with (seed, tag, office, day), so a
day's dossiers do not depend on the window asked for: two runs over overlapping windows send the
same events for the same days (duplicates, never conflicts). Events are plain dicts serialised at
once with orjson (sorted keys, stable bytes) and bucketed by the day they occur; a day's bucket is
complete once that day's receptions are generated, so memory holds only the pending future.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from sim import behaviour as bh
from sim.answer_key import AnswerKey, DossierFacts
from sim.clock import DAY, Clock, date_of, day_of
from sim.world import Office, Procedure, World

_DUMP_OPTS = orjson.OPT_SORT_KEYS
_WORK_START = 7 * 3600 + 30 * 60  # 07:30
_WORK_END = 17 * 3600
BURST_CLIENT = "203.0.113.77"  # TEST-NET-3: the one address behind the rating burst

CATALOGUE_T = day_of(date(2025, 7, 1)) * DAY  # the catalogue's first version: 1 July 2025

Sink = Callable[[int, str, bytes], None]


@dataclass
class Anomalies:
    """Configurable misbehaviour to check that SQI notices or resists it."""

    rating_burst: int = 40  # very_satisfied ratings from one client address (needs feedback)
    reopen_rate: float = 0.001  # completed dossiers "reopened" by a new received event
    silent_source: bool = True  # one source sends nothing for one working day

    @classmethod
    def none(cls) -> Anomalies:
        return cls(rating_burst=0, reopen_rate=0.0, silent_source=False)


@dataclass
class Config:
    seed: int
    t_start: int  # local seconds, inclusive
    t_end: int  # local seconds, inclusive: nothing later is emitted
    scale: float = 1.0
    feedback: bool = False
    anomalies: Anomalies = field(default_factory=Anomalies)
    tag: str = "H"  # dossier-id namespace: history vs live
    t_receive_end: int | None = None  # last reception time (default t_end): live mode plans ahead
    # Emit nothing at or before this instant (the continuation of a run already sent: --settle-until).
    t_emit_after: int | None = None
    # Send the procedure catalogue (procedure.upserted). The catalogue is global: a test platform
    # shared with other tests keeps the reference seed's by switching this off.
    catalogue: bool = True
    # At most this many citizen-endpoint writes (petitions, reactions, citizen ratings; the rating
    # burst aside): a back-fill must stay within the gateway's per-address limit. None = no bound
    # (live mode, where the sender spreads them in time).
    citizen_writes: int | None = None
    citizen_rating_share: float = 0.02  # ratings sent through the citizen endpoint; the rest imported


def estimate_events(world: World, cfg: Config, clock: Clock) -> int:
    """Roughly how many events a run will emit (for the progress line's ETA)."""
    wd = sum(1 for d in range(cfg.t_start // DAY, cfg.t_end // DAY + 1) if clock.is_wd(d))
    off = (cfg.t_end - cfg.t_start) // DAY + 1 - wd
    total_w = sum(o.weight for o in world.offices)
    return int(4.95 * bh.DOSSIERS_PER_MILLION_WD * cfg.scale * total_w * (wd + bh.OFF_DAY_ONLINE_SHARE * off))


def seed_tag(seed: int) -> str:
    return hashlib.blake2b(str(seed).encode(), digest_size=2).hexdigest().upper()


def _ri(rng: random.Random, lo: int, hi: int) -> int:
    """``rng.randint`` without its argument checks: the generator's hottest call."""
    return lo + int(rng.random() * (hi - lo + 1))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Generator:
    """Generates one run's events; also fills the answer key and the feedback to send."""

    def __init__(self, world: World, cfg: Config, clock: Clock | None = None) -> None:
        self.world, self.cfg = world, cfg
        self.clock = clock or Clock()
        self.tag = cfg.tag + seed_tag(cfg.seed)
        self.key = AnswerKey(self.clock, cfg.t_end, {u["code"]: u["parent_code"] or None for u in world.units})
        for o in world.offices:
            self.key.parents[o.code] = o.parent_code
        self.counts: Counter[str] = Counter()
        self.feedback: list[dict[str, Any]] = []
        self._buckets: dict[int, list[tuple[int, str, bytes]]] = {}
        self.sink: Sink = self._bucket
        self._locals_by_province: dict[str, list[Office]] = {}
        for o in world.local_offices():
            self._locals_by_province.setdefault(o.province_code, []).append(o)
        self._procs: dict[str, list[Procedure]] = {
            lvl: [p for p in world.procedures if lvl in p.levels] for lvl in ("central", "province", "local")
        }
        self._mix = {lvl: bh.procedure_mix(ps) for lvl, ps in self._procs.items()}
        arng = random.Random(f"anomalies:{cfg.seed}")
        locals_ = sorted(world.local_offices(), key=lambda o: -o.weight)
        self.burst_office = locals_[arng.randrange(min(20, len(locals_)))].code
        self._burst_pool: list[tuple[int, str]] = []
        # One source goes dark on one working day a month: the first working day on or after a
        # day of the month fixed by the seed, so every window agrees on which days those are.
        self.silent_source: str | None = None
        self._silent_dom = 8 + arng.randrange(18)
        self._silent_days: dict[int, bool] = {}
        if cfg.anomalies.silent_source:
            self.silent_source = sorted(world.sources)[arng.randrange(len(world.sources))]
            days = [
                d for d in range(cfg.t_start // DAY, cfg.t_end // DAY + 1) if self._is_silent(self.silent_source, d)
            ]
            self.key.anomalies["silent_source"] = {
                "source": self.silent_source,
                "dates": [self.clock.fmt_date(d) for d in days],
            }
        self._reopened: list[str] = []
        self._cum_offices: list[float] = []
        # The citizen-write budget: half for ratings, the rest for petitions and reactions, so
        # both paths are exercised however small it is.
        n = cfg.citizen_writes
        self._citizen_left: dict[str, int] | None = None if n is None else {"rating": n // 2, "petition": n - n // 2}

    def take_citizen_write(self, kind: str = "petition") -> bool:
        """One more citizen-endpoint write of ``kind`` (rating / petition), if the budget allows it."""
        if self._citizen_left is None:
            return True
        if self._citizen_left[kind] <= 0:
            return False
        self._citizen_left[kind] -= 1
        return True

    # -- output -------------------------------------------------------------------------------
    def _bucket(self, t: int, source: str, line: bytes) -> None:
        b = self._buckets.get(t // DAY)
        if b is None:
            b = self._buckets[t // DAY] = []
        b.append((t, source, line))

    def _emit(self, t: int, source: str, etype: str, eid: str, data: dict[str, Any]) -> None:
        if t > self.cfg.t_end or (self.cfg.t_emit_after is not None and t <= self.cfg.t_emit_after):
            return
        ev = {"event_id": eid, "type": etype, "occurred_at": self.clock.fmt(t), "source": source, "data": data}
        self.counts[etype] += 1
        # "+ newline" also copies orjson's over-allocated (4 KiB) buffer into an exact-size one.
        self.sink(t, source, orjson.dumps(ev, option=_DUMP_OPTS) + b"\n")

    def _is_silent(self, source: str, day: int) -> bool:
        if source != self.silent_source:
            return False
        v = self._silent_days.get(day)
        if v is None:
            d = date_of(day)
            if not self.clock.is_wd(day) or d.day < self._silent_dom:
                v = False
            else:  # silent iff no working day in [silent_dom, d) of this month
                v = all(not self.clock.is_wd(x) for x in range(day - d.day + self._silent_dom, day))
            self._silent_days[day] = v
        return v

    def _bump(self, source: str, t: int) -> int:
        """A silent source records what happened on its dark day the next morning."""
        if source == self.silent_source and self._is_silent(source, t // DAY):
            return (t // DAY + 1) * DAY + _WORK_START + (t % DAY) // 20
        return t

    # -- stream ---------------------------------------------------------------------------------
    def lines(self) -> Iterator[tuple[str, bytes]]:
        """(source, NDJSON line ending in a newline) in occurrence order, day by day."""
        if self.cfg.catalogue:
            yield from self.catalogue()
        first, last = self.cfg.t_start // DAY, self.cfg.t_end // DAY
        for day in range(first, last + 1):
            self.generate_day(day)
            bucket = self._buckets.pop(day, [])
            bucket.sort(key=lambda x: x[0])
            for _, src, line in bucket:
                yield src, line
        self.finish()

    def finish(self) -> None:
        """After the last day: anomalies that need the whole run, totals for the key."""
        self._rating_burst()
        self.key.anomalies["reopened_dossiers"] = self._reopened
        self.key.totals = {"events": sum(self.counts.values()), "by_type": dict(sorted(self.counts.items()))}

    def catalogue(self) -> Iterator[tuple[str, bytes]]:
        """``procedure.upserted`` for every procedure, sent first so dossiers find them."""
        src = "tms-ct"
        first, last = self.cfg.t_start // DAY, self.cfg.t_end // DAY
        for p in self.world.procedures:
            prng = random.Random(f"proc:{self.cfg.seed}:{p.code}")
            # The version in force since the reorganisation (the same bytes whatever the window,
            # so every run resends it as a duplicate); a third get an amendment inside the window.
            versions = [(CATALOGUE_T, CATALOGUE_T // DAY - _ri(prng, 60, 400))]
            if prng.random() < 0.35 and last - first > 3:
                d = _ri(prng, first + 1, last - 1)
                versions.append((d * DAY + 9 * 3600, d))
            for t, decision in versions:
                data = self._procedure_data(p, decision, prng)
                h = hashlib.blake2b(orjson.dumps([t, data], option=_DUMP_OPTS), digest_size=8).hexdigest()
                ev = {
                    "event_id": f"proc:{p.code}:{h}",
                    "type": "procedure.upserted",
                    "occurred_at": self.clock.fmt(t),
                    "source": src,
                    "data": data,
                }
                self.counts["procedure.upserted"] += 1
                line = orjson.dumps(ev, option=_DUMP_OPTS) + b"\n"
                if t == CATALOGUE_T:
                    yield src, line
                else:
                    self._bucket(t, src, line)

    def _procedure_data(self, p: Procedure, decision: int, rng: random.Random) -> dict[str, Any]:
        c = self.clock
        # Mostly decided ≥ 20 working days before taking effect, and publicised within 10.
        lead = rng.choice((35, 40, 45, 60, 12))
        pub = c.add_wd(decision, rng.choice((2, 3, 5, 8, 14)))
        return {
            "procedure_code": p.code,
            "name": p.name,
            "field": p.field,
            "levels": list(p.levels),
            "time_limit_wd": p.time_limit_wd,
            "online_level_offered": p.online_level_offered,
            "has_fee": p.has_fee,
            "returns_document": p.returns_document,
            "target": p.target,
            "complete_listing": rng.random() < 0.9,
            "legal_effective_date": c.fmt_date(decision + lead),
            "published_decision_date": c.fmt_date(decision),
            "publicized_at": c.fmt(pub * DAY + 10 * 3600),
        }

    # -- one day --------------------------------------------------------------------------------
    def generate_day(self, day: int) -> None:
        d = date_of(day)
        working = self.clock.is_wd(day)
        day_f = (bh.weekday_factor(d) if working else bh.OFF_DAY_ONLINE_SHARE) * bh.tet_factor(d)
        base = bh.DOSSIERS_PER_MILLION_WD * self.cfg.scale * day_f
        receive_end = self.cfg.t_end if self.cfg.t_receive_end is None else self.cfg.t_receive_end
        for o in self.world.offices:
            if self._is_silent(o.source, day):
                continue
            procs = self._procs[o.level]
            if not procs:
                continue
            w = [m * bh.procedure_factor(p.code, d) for p, m in zip(procs, self._mix[o.level], strict=True)]
            rng = random.Random(f"{self.cfg.seed}:{self.tag}:{o.code}:{day}")
            n = _poisson(rng, base * o.weight * sum(w) / sum(self._mix[o.level]))
            if not n:
                continue
            cum = []
            acc = 0.0
            for x in w:
                acc += x
                cum.append(acc)
            chosen = rng.choices(procs, cum_weights=cum, k=n)
            yymmdd = d.strftime("%y%m%d")
            for i, p in enumerate(chosen):
                if working:
                    t0 = day * DAY + _ri(rng, _WORK_START, _WORK_END)
                elif p.online_level_offered != "none":
                    t0 = day * DAY + _ri(rng, 6 * 3600, 23 * 3600)
                else:
                    continue
                # Each dossier draws from its own generator: how far a run reaches (its end) must not
                # change the draws of the next dossier, or re-runs would send conflicting events.
                drng = random.Random(rng.getrandbits(64))
                if t0 < self.cfg.t_start or t0 > receive_end:
                    continue
                self.dossier(o, p, t0, f"{o.code}-{yymmdd}-{self.tag}-{i:05d}", drng, not working)

    def spawn(self, rng: random.Random, t0: int, seq: int) -> None:
        """One new dossier received at ``t0`` by an office drawn by volume (live mode)."""
        if not self._cum_offices:
            acc = 0.0
            for o in self.world.offices:
                acc += o.weight
                self._cum_offices.append(acc)
        o = rng.choices(self.world.offices, cum_weights=self._cum_offices)[0]
        procs = self._procs[o.level]
        if procs:
            p = rng.choices(procs, weights=self._mix[o.level])[0]
            # Out of office hours only online submissions arrive.
            off = not (self.clock.is_wd(t0 // DAY) and _WORK_START <= t0 % DAY <= _WORK_END)
            if off and p.online_level_offered == "none":
                return
            yymmdd = date_of(t0 // DAY).strftime("%y%m%d")
            self.dossier(o, p, t0, f"{o.code}-{yymmdd}-{self.tag}-{seq:06d}", rng, off)

    def _work_time(self, rng: random.Random, day: int) -> int:
        return day * DAY + _ri(rng, _WORK_START, _WORK_END)

    def _finish_time(self, rng: random.Random, t_start: int, n: int | None, due: int, on_time: bool) -> int:
        """When handling ends, early/on time (≤ due) or late (≥ one working day after due)."""
        c = self.clock
        day0 = t_start // DAY
        if on_time:
            k = int(((n or 0) + 1) * rng.random() ** 1.7)
            if k == 0:
                return min(t_start + _ri(rng, 300, 3 * 3600), (day0 + 1) * DAY - 60, due)
            return max(self._work_time(rng, c.add_wd(day0, k)), t_start + 60)
        late_day = c.add_wd(due // DAY - (1 if due % DAY == 0 else 0), 1 + int(5 * rng.random() ** 2))
        return self._work_time(rng, late_day)

    # -- one dossier ----------------------------------------------------------------------------
    def dossier(self, o: Office, p: Procedure, t0: int, did: str, rng: random.Random, offday: bool) -> None:
        """Plan and emit one dossier's lifecycle; record its facts in the answer key."""
        c, src, emit, bump, t_end = self.clock, o.source, self._emit, self._bump, self.cfg.t_end
        rnd = rng.random
        online = offday or rnd() < bh.online_share(o, p)
        channel = "online" if online else ("post" if rnd() < 0.1 else "counter")
        applicant = p.target if p.target != "both" else ("citizen" if rnd() < 0.5 else "business")
        officer = rng.choice(o.officers)
        citizen = applicant == "citizen"
        popdata = citizen and rnd() < (0.8 if online else 0.5) * (0.5 if o.slow_digitise else 1.0)
        pstore = online and citizen and rnd() < 0.4
        n = p.time_limit_wd
        day0 = t0 // DAY
        due = (c.add_wd(day0, n) + 1) * DAY if n is not None else (day0 + 1) * DAY
        f = DossierFacts(did, o.code, t0, [(t0, due)], online=online, returns_document=p.returns_document)
        f.population_data, f.personal_store = popdata, pstore
        emit(
            t0,
            src,
            "dossier.received",
            did + ":rcv",
            {
                "dossier_id": did,
                "procedure_code": p.code,
                "unit_code": o.code,
                "due_at": c.fmt(due) if (o.sends_due_at or offday) else None,
                "channel": channel,
                "online_level": p.online_level_offered if online else "none",
                "applicant_type": applicant,
                "officer_id": officer,
                "population_data_used": popdata,
                "personal_store_used": pstore,
            },
        )
        # Số hóa thành phần hồ sơ: online files at once, paper scanned within hours.
        if rnd() < bh.digitise_probability(o):
            comps = _ri(rng, 1, 4)
            reused = _ri(rng, 1, comps) if rnd() < (0.35 if o.slow_digitise else 0.75) else 0
            fps = _ri(rng, 1, comps) if pstore and rnd() < 0.6 else 0
            td = bump(src, t0 + (_ri(rng, 5, 120) if online else _ri(rng, 600, 4 * 3600)))
            if td <= t_end:
                f.digitized, f.reused = True, reused > 0
                f.personal_store = pstore or fps > 0
                emit(
                    td,
                    src,
                    "dossier.components_digitized",
                    did + ":dig",
                    {"dossier_id": did, "components": comps, "reused": reused, "from_personal_store": fps},
                )
        if p.has_fee:
            f.fee = f.fee_payable = True  # unpaid dossiers stay in 4.6's denominator
            self._payment(f, rng, src, t0, online, did)
        ps, lo, hi = bh.sync_profile(o)
        if rnd() < ps:
            ts = bump(src, t0 + _ri(rng, lo, hi))
            if ts <= t_end:
                f.synced = True
                emit(ts, src, "dossier.synced", did + ":syn", {"dossier_id": did})
        slow = officer in o.slow_officers
        on_time = rnd() < bh.on_time_probability(o, slow)
        start, cur_due, limit = t0, due, n
        # Yêu cầu bổ sung: pauses the clock; 20 % never answered; a few asked twice.
        if n is not None and n >= 2 and rnd() < (0.13 if o.backlog_prone else 0.08):
            k1 = _ri(rng, 0, n - 1)
            tr = t0 + _ri(rng, 1800, 3 * 3600) if k1 == 0 else self._work_time(rng, c.add_wd(day0, k1))
            tr = bump(src, min(tr, due - 60))
            if tr > t_end:
                self._close(f)
                return
            emit(
                tr,
                src,
                "dossier.supplement_requested",
                did + ":sup1",
                {"dossier_id": did, "reason": "Thiếu tờ khai, chứng từ kèm theo", "officer_id": officer},
            )
            if rnd() < 0.2:
                f.pauses.append((tr, None))
                f.finish, f.finish_kind = tr, "unanswered"
                self._close(f)
                return
            ta = bump(src, self._work_time(rng, c.add_wd(tr // DAY, _ri(rng, 1, 5))))
            remaining = limit = max(1, n - k1)
            if ta > t_end:
                f.pauses.append((tr, None))
                self._close(f)
                return
            f.pauses.append((tr, ta))
            cur_due = (c.add_wd(ta // DAY, remaining) + 1) * DAY
            f.dues.append((ta, cur_due))
            emit(ta, src, "dossier.supplement_received", did + ":supr1", {"dossier_id": did, "due_at": c.fmt(cur_due)})
            start = ta
            if rnd() < 0.1:
                # A second request: by the methodology the dossier is overdue whatever follows.
                tr2 = bump(src, min(ta + _ri(rng, 3600, 2 * DAY), cur_due - 60))
                if tr2 > t_end:
                    self._close(f)
                    return
                f.second_request = tr2
                emit(
                    tr2,
                    src,
                    "dossier.supplement_requested",
                    did + ":sup2",
                    {"dossier_id": did, "reason": "Bổ sung lần hai", "officer_id": officer},
                )
                ta2 = bump(src, self._work_time(rng, c.add_wd(tr2 // DAY, _ri(rng, 1, 4))))
                if ta2 > t_end:
                    f.pauses.append((tr2, None))
                    self._close(f)
                    return
                f.pauses.append((tr2, ta2))
                cur_due = (c.add_wd(ta2 // DAY, remaining) + 1) * DAY
                f.dues.append((ta2, cur_due))
                emit(
                    ta2,
                    src,
                    "dossier.supplement_received",
                    did + ":supr2",
                    {"dossier_id": did, "due_at": c.fmt(cur_due)},
                )
                start = ta2
        tc = bump(src, self._finish_time(rng, start, limit, cur_due, on_time))
        final = o
        # Chuyển hồ sơ: handed to a sister office of the same province, before it is finished.
        sisters = self._locals_by_province.get(o.province_code, [])
        if o.level == "local" and len(sisters) > 1 and rnd() < 0.03:
            tt = bump(src, start + (tc - start) // 3)
            if tt <= t_end and tt < tc:
                final = sisters[rng.randrange(len(sisters))]
                if final is o:
                    final = sisters[(sisters.index(o) + 1) % len(sisters)]
                f.unit = final.code
                emit(
                    tt,
                    src,
                    "dossier.transferred",
                    did + ":trf",
                    {"dossier_id": did, "to_unit_code": final.code, "officer_id": officer},
                )
                officer = rng.choice(final.officers)
        if rnd() < 0.02:
            tw = bump(src, start + int((tc - start) * rnd()) + 60)
            if final is not o:
                # Withdrawn after the transfer: a transfer after a terminal event moves nothing.
                tw = max(tw, tt + 60)
            if tw <= t_end:
                f.finish, f.finish_kind = tw, "withdrawn"
                emit(tw, src, "dossier.withdrawn", did + ":wd", {"dossier_id": did})
            self._close(f)
            return
        if tc > t_end:
            self._close(f)
            return
        digital = rnd() < bh.result_digitized_probability(o)
        f.finish, f.finish_kind, f.result_digitized = tc, "completed", digital
        emit(
            tc,
            src,
            "dossier.completed",
            did + ":cmp",
            {
                "dossier_id": did,
                "outcome": "approved" if rnd() < 0.95 else "refused",
                "result_digitized": digital,
                "officer_id": officer,
            },
        )
        if rnd() < 0.88:
            emit(
                bump(src, tc + _ri(rng, 600, 2 * DAY)),
                src,
                "dossier.result_returned",
                did + ":ret",
                {"dossier_id": did},
            )
        late = tc > cur_due or f.second_request is not None
        if rnd() < self.cfg.anomalies.reopen_rate:
            # Closing and reopening must not reset the clock: same dossier_id, a new received.
            tro = tc + _ri(rng, DAY, 3 * DAY)
            if tro <= t_end:
                self._reopened.append(did)
                emit(
                    tro,
                    src,
                    "dossier.received",
                    did + ":rcv2",
                    {
                        "dossier_id": did,
                        "procedure_code": p.code,
                        "unit_code": final.code,
                        "due_at": None,
                        "channel": "counter",
                        "online_level": "none",
                        "applicant_type": applicant,
                        "officer_id": officer,
                        "population_data_used": False,
                        "personal_store_used": False,
                    },
                )
        if self.cfg.feedback:
            self._citizen_feedback(f, final, rng, tc, late)
        if final.code == self.burst_office and not late and not f.rated_dissatisfied:
            self._burst_pool.append((tc, did))
        self._close(f)

    def _close(self, f: DossierFacts) -> None:
        self.key.add(f)

    def _payment(self, f: DossierFacts, rng: random.Random, src: str, t0: int, online: bool, did: str) -> None:
        if rng.random() >= 0.92:
            return  # never paid (yet)
        amount = 0 if rng.random() < 0.08 else _ri(rng, 5, 20000) * 1000
        if amount == 0:
            pch = "counter"  # exempt: recorded at the desk; keeps "paid online" unambiguous
        elif online:
            pch = "national_portal" if rng.random() < 0.45 else "gateway"
        else:
            pch = "gateway" if rng.random() < 0.25 else "counter"
        tp = self._bump(src, t0 + (_ri(rng, 60, 3600) if online else _ri(rng, 300, 5400)))
        if tp > self.cfg.t_end:
            return
        f.fee_payable = amount > 0  # only "all payments 0 VND" leaves the denominator
        f.paid_online = pch != "counter"
        self._emit(tp, src, "dossier.paid", did + ":pay", {"dossier_id": did, "amount_vnd": amount, "channel": pch})

    # -- feedback -------------------------------------------------------------------------------
    def _citizen_feedback(self, f: DossierFacts, o: Office, rng: random.Random, tc: int, late: bool) -> None:
        from sim.feedback import petition_items, rating_item

        if rng.random() < (0.14 if late else 0.06):
            item = rating_item(self, f, o, rng, tc, late)
            if item is not None:
                self.feedback.append(item)
        if rng.random() < (0.03 if late else 0.002):
            self.feedback.extend(petition_items(self, f, o, rng, tc))

    def _rating_burst(self) -> None:
        if not (self.cfg.feedback and self.cfg.anomalies.rating_burst and self._burst_pool):
            return
        from sim.feedback import burst_items

        items = burst_items(self, self._burst_pool, self.cfg.anomalies.rating_burst)
        self.feedback.extend(items)
        self.key.anomalies["rating_burst"] = {
            "client": BURST_CLIENT,
            "unit_code": self.burst_office,
            "dossier_ids": [i["body"]["dossier_id"] for i in items],
        }
