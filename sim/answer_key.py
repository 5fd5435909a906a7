"""The answer key (đáp án): what the simulator intended, per unit and month.

For every dossier the generator records a :class:`DossierFacts` with only what it actually
emitted (nothing after the run's end). The key then counts, per unit (the unit that answers for
the dossier at the end: the target of its last transfer) and per calendar month in Vietnam time:

- ``received`` / ``received_online`` / ``received_online_qualifying`` (online and, if the
  procedure returns a document, completed with an electronic result: 4.3's numerator before the
  sync factor) / ``received_fee`` / ``received_fee_payable`` (minus dossiers whose payments are
  all 0 VND) / ``paid_online`` (an online payment; 0 VND payments are always made at the counter,
  so the two rules cannot disagree) — attributed by received time;
- ``completed`` / ``withdrawn`` — attributed by the time of that event;
- ``handled*`` — dossiers received in the month, or received earlier and still open at its start
  (finished = completed, withdrawn, or ended by an unanswered supplement request). Judged at the
  month's end (or at the run's end for the running month): ``handled_overdue`` = finished after the
  due time in force, or open and past it, or asked for supplements twice; a dossier waiting for
  documents is judged at its request time. Properties (synced, electronic result, digitised, …)
  count if the simulator emitted them at any time before the run's end (SQI's set semantics);
- ``handled_rated_dissatisfied``, ``handled_petitioned``, ``handled_satisfaction_ok`` (5.4's
  numerator: not overdue, not rated dissatisfied, not named in a petition) — only with feedback.
  A rating counts for the months judged after its ``rated_at`` (SQI: the latest rating before the
  judging instant). Only IMPORTED ratings carry a simulated ``rated_at``; a rating or petition
  sent through the citizen endpoint is dated by SQI at arrival (today), so in a back-filled
  history it can never count for the simulated months and the key leaves it out:
  ``handled_petitioned`` is therefore 0 for a back-fill, and 5.2/5.3 (petitions of the period) are
  not in the key.

Definitions compared with SQI (``tests/e2e/test_simulated_month.py`` compares them exactly):

- 1.4 = ``handled_synced``, 2.1 = ``handled_on_time``, 3.1 = ``handled_result_digitized``,
  3.2 = ``handled_digitized``, 3.3 = ``handled_reused``, 3.4 = ``handled_personal_store``,
  3.5 = ``handled_population_data``, 5.4 = ``handled_satisfaction_ok``, each over ``handled``;
  4.6 = ``paid_online`` / ``received_fee_payable`` (a 0 VND payment is always made at the counter,
  so "all payments 0 VND" and "paid online" never meet); ``received`` is 4.3/4.6's base.
- One difference, by design of the key: SQI judges a month with only what happened before the
  month's end, while the key counts a property (synced, electronic result, digitised, payment …)
  emitted at any time before the run's end. They agree for the LAST month of a run (the run ends
  with it); for an earlier month of a longer run the key also counts what happened after that
  month's end (a dossier received on the 30th and synced on the 2nd). Compare the last month.
- ``completed``/``withdrawn`` are attributed by the month of the event (SQI shows no such count).

``subtree`` sums ``units`` over each unit's subtree (provinces and Cục Thuế).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from sim.clock import DAY, Clock, date_of, day_of

COUNTERS = (
    "received",
    "received_online",
    "received_online_qualifying",
    "received_fee",
    "received_fee_payable",
    "paid_online",
    "completed",
    "withdrawn",
    "handled",
    "handled_on_time",
    "handled_overdue",
    "handled_synced",
    "handled_result_digitized",
    "handled_digitized",
    "handled_reused",
    "handled_personal_store",
    "handled_population_data",
    "handled_rated_dissatisfied",
    "handled_petitioned",
    "handled_satisfaction_ok",
)


@dataclass(slots=True)
class DossierFacts:
    """What was emitted about one dossier (times are local seconds, see :mod:`sim.clock`)."""

    dossier_id: str
    unit: str
    t0: int
    dues: list[tuple[int, int]]  # (in force from, due time), ascending
    finish: int | None = None
    finish_kind: str | None = None  # completed / withdrawn / unanswered
    second_request: int | None = None
    pauses: list[tuple[int, int | None]] = field(default_factory=list)  # (requested, answered)
    online: bool = False
    fee: bool = False
    fee_payable: bool = False
    paid_online: bool = False
    returns_document: bool = False
    synced: bool = False
    result_digitized: bool = False
    digitized: bool = False
    reused: bool = False
    personal_store: bool = False
    population_data: bool = False
    rated_dissatisfied: bool = False  # its (imported) rating is dissatisfied
    rated_at: int | None = None  # when that rating was given (imported ratings only)
    petitioned: bool = False

    def due_at(self, t: int) -> int:
        due = self.dues[0][1]
        for since, d in self.dues:
            if since <= t:
                due = d
        return due

    def on_time_at(self, c: int) -> bool:
        """On time (or not yet due) as judged at instant ``c``."""
        if self.second_request is not None and self.second_request <= c:
            return False
        if self.finish is not None and self.finish <= c:
            return self.finish <= self.due_at(self.finish)
        for req, ans in self.pauses:
            if req <= c and (ans is None or ans > c):
                return req <= self.due_at(req)
        return c <= self.due_at(c)


class AnswerKey:
    """Accumulates :class:`DossierFacts` into per-unit, per-month counts."""

    def __init__(self, clock: Clock, t_end: int, parents: dict[str, str | None]) -> None:
        self.clock = clock
        self.t_end = t_end
        self.parents = parents
        self.units: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
        )
        self.feedback: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.anomalies: dict[str, Any] = {}
        self.totals: dict[str, Any] = {}
        self._month_bounds: dict[str, tuple[int, int]] = {}
        self._months: dict[int, str] = {}

    def _month(self, t: int) -> str:
        m = self._months.get(t // DAY)
        if m is None:
            d = date_of(t // DAY)
            m = self._months[t // DAY] = f"{d.year:04d}-{d.month:02d}"
        return m

    def _bounds(self, month: str) -> tuple[int, int]:
        b = self._month_bounds.get(month)
        if b is None:
            y, m = int(month[:4]), int(month[5:])
            start = day_of(date_of(0).replace(year=y, month=m)) * DAY
            ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
            end = day_of(date_of(0).replace(year=ny, month=nm)) * DAY
            b = self._month_bounds[month] = (start, end)
        return b

    def add(self, f: DossierFacts) -> None:
        u = self.units[f.unit]
        m0 = self._month(f.t0)
        c = u[m0]
        c["received"] += 1
        if f.online:
            c["received_online"] += 1
            if not f.returns_document or (f.finish_kind == "completed" and f.result_digitized):
                c["received_online_qualifying"] += 1
        if f.fee:
            c["received_fee"] += 1
            if f.fee_payable:
                c["received_fee_payable"] += 1
        if f.paid_online:
            c["paid_online"] += 1
        if f.finish is not None and f.finish_kind in ("completed", "withdrawn"):
            u[self._month(f.finish)][f.finish_kind] += 1
        last = self._month(min(f.finish if f.finish is not None else self.t_end, self.t_end))
        month = m0
        while True:
            _start, end = self._bounds(month)
            c = u[month]
            c["handled"] += 1
            on_time = f.on_time_at(min(end, self.t_end))
            c["handled_on_time" if on_time else "handled_overdue"] += 1
            c["handled_synced"] += f.synced
            c["handled_result_digitized"] += f.result_digitized
            c["handled_digitized"] += f.digitized and (
                not (f.returns_document and f.finish_kind == "completed") or f.result_digitized
            )
            c["handled_reused"] += f.reused
            c["handled_personal_store"] += f.personal_store
            c["handled_population_data"] += f.population_data
            # A rating counts for a month judged after it was given.
            dissatisfied = f.rated_dissatisfied and f.rated_at is not None and f.rated_at < end
            c["handled_rated_dissatisfied"] += dissatisfied
            c["handled_petitioned"] += f.petitioned
            c["handled_satisfaction_ok"] += on_time and not dissatisfied and not f.petitioned
            if month >= last:
                break
            month = self._month(end)

    def subtree(self) -> dict[str, dict[str, dict[str, int]]]:
        out: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: dict.fromkeys(COUNTERS, 0)))
        for code, months in self.units.items():
            chain: list[str] = []
            cur: str | None = code
            while cur is not None:
                chain.append(cur)
                cur = self.parents.get(cur)
            for month, counts in months.items():
                for anc in chain:
                    tgt = out[anc][month]
                    for k, v in counts.items():
                        tgt[k] += v
        return out

    def to_json(self, meta: dict[str, Any]) -> bytes:
        doc = {
            **meta,
            "definitions": __doc__,
            "units": self.units,
            "subtree": self.subtree(),
            "feedback": self.feedback,
            "anomalies": self.anomalies,
            "totals": self.totals,
        }
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
