"""One declaration per indicator (định nghĩa chỉ số): what its numerator and denominator count.

Every computation SQI counts — the tax-2025 ids 1.1 … 5.4 that a methodology names as an
indicator's ``basis`` — is one :class:`Definition` in :data:`DEFINITIONS`. Derived from them:

* the bits stored per dossier and period (:data:`FLAGS`, :class:`F`, and :func:`flags_of`, compiled
  once at import from the flags' predicates into one plain-int expression: it is on the judging
  hot path);
* the stored counters (:data:`SUMS` → ``scoring.unit_tally`` columns, :data:`PROCEDURE_BITS` →
  ``scoring.unit_procedure_tally`` columns, in :mod:`services.scoring.adapters.tallies`) and the
  dossier-list condition of a shortfall (:data:`DOSSIER_RATIOS`);
* the counts, by one function over those sums whether they come from the stored counters
  (live refresh) or from verdicts judged from scratch (recompute, custom ranges, points at
  stake): :func:`services.scoring.domain.indicators.tally_counts`;
* the words of a breakdown's explanation (:attr:`Definition.vi` / :attr:`Definition.en`) and the
  bases a methodology may name (``KNOWN_BASES``).

A new dossier or distinct-procedure indicator is one declaration here (plus its place in a
methodology document). Catalogue ones (1.1–1.3, 4.1) have their formula in
:mod:`~services.scoring.domain.indicators`. 5.4 (satisfaction) is the on-time counter minus a
second one: the on-time dossiers that citizens' feedback excepts (rated dissatisfied, named in
a petition — a flag of the verdict, 0 when nothing does, so rows judged before it existed stay
right for every dossier never rated dissatisfied nor petitioned). A flag's ``bit`` is stored in
``scoring.contribution.flags``: it never changes (a new flag takes an unused bit; moving one
needs a migration rewriting the stored flags), and a counter's ``column`` is a table column.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from enum import IntFlag, StrEnum
from typing import Any

from .verdict import PERIOD_FIELDS, DossierVerdict


class Kind(StrEnum):
    CENTRAL_CATALOGUE = "central_catalogue"  # procedure catalogue, measured at central (1.1–1.3)
    UNIT_CATALOGUE = "unit_catalogue"  # the unit's catalogue procedures offered online (4.1)
    DOSSIER_RATIO = "dossier_ratio"  # dossiers carrying a flag / the dossiers of a base
    DOSSIER_AVERAGE = "dossier_average"  # handling working days per dossier whose clock ended (2.2)
    PROCEDURE_RATIO = "procedure_ratio"  # distinct procedures with ≥ 1 handled dossier carrying a flag
    PETITION = "petition"  # petitions (phản ánh, kiến nghị) of the period
    RATING = "rating"  # a counter minus its excepted contributions (5.4: on time, not excepted by feedback)


@dataclass(frozen=True, slots=True)
class Flag:
    """A verdict property stored as one bit of a dossier's contribution to a period.

    ``when``: a Python expression over the verdict ``v`` (compiled into :func:`flags_of`).
    """

    name: str
    bit: int
    when: str

    @property
    def mask(self) -> int:
        return 1 << self.bit

    @property
    def column(self) -> str:
        """Its ``scoring.unit_procedure_tally`` column (handled dossiers of the procedure with it)."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Counter:
    """A ``scoring.unit_tally`` column: the unit's contributions carrying ``base``, ``flag`` and
    ``also`` (each when given)."""

    column: str
    base: Flag
    flag: Flag | None = None
    also: Flag | None = None

    @property
    def flags(self) -> tuple[Flag, ...]:
        return tuple(f for f in (self.base, self.flag, self.also) if f is not None)

    @property
    def mask(self) -> int:
        out = 0
        for f in self.flags:
            out |= f.mask
        return out


@dataclass(frozen=True, slots=True)
class Definition:
    """One computation (phép tính của chỉ số): numerator over denominator.

    DOSSIER_RATIO, RATING: :class:`Counter` s; RATING's numerator is ``numerator`` minus
    ``excepted`` (a counter of a subset of it). PROCEDURE_RATIO: :class:`Flag` s (distinct
    procedures of handled dossiers); ``online_catalogue``: both sides within the unit's catalogue
    procedures offered online, the denominator being all of those (4.2). PETITION: ``petition`` =
    (the petitions counted, the numerator's property) as attributes of the petition verdict.
    ``scaled_by``: the numerator is multiplied by that computation's ratio (4.3 by 1.4's).
    """

    id: str
    kind: Kind
    vi: str  # numerator / denominator in words
    en: str
    numerator: Counter | Flag | None = None
    denominator: Counter | Flag | None = None
    scaled_by: str | None = None
    online_catalogue: bool = False
    petition: tuple[str, str] | None = None
    excepted: Counter | None = None


# Flags more than one computation reads.
RECEIVED = Flag("RECEIVED", 0, "v.received_in_period")  # received in the period (known at the judging instant)
HANDLED = Flag("HANDLED", 1, "v.handled_in_period")
ON_TIME = Flag("ON_TIME", 2, "v.on_time")
SYNCED = Flag("SYNCED", 3, "v.synced")
FOR_CITIZENS = Flag("FOR_CITIZENS", 9, "v.for_citizens")
HAS_FEE = Flag("HAS_FEE", 13, "v.has_fee")
FEE_DOSSIER = Flag("FEE_DOSSIER", 16, "v.has_fee and not v.payments_all_zero")  # not paid wholly in 0 VND

HANDLED_COUNT = Counter("h", HANDLED)
RECEIVED_COUNT = Counter("r", RECEIVED)
ON_TIME_COUNT = Counter("on_time", HANDLED, ON_TIME)
ENDED, ENDED_DAYS = "ended", "ended_days"  # 2.2: handled dossiers whose clock ended, their working days
# 5.4: citizens' feedback excepts the dossier at the judging instant (its latest rating before it
# is dissatisfied, or a petition received before it names it: DossierFeedback.exception).
UNSATISFIED_BY_FEEDBACK = Flag("UNSATISFIED_BY_FEEDBACK", 18, "v.feedback_exception is not None")
ON_TIME_EXCEPTED = Counter("on_time_excepted", HANDLED, ON_TIME, UNSATISFIED_BY_FEEDBACK)

_HANDLED_VI, _HANDLED_EN = "hồ sơ xử lý trong kỳ", "dossiers handled in the period"


def _of_handled(vi: str, en: str) -> tuple[str, str]:
    return f"{vi} / {_HANDLED_VI}", f"{en} / {_HANDLED_EN}"


def _handled_ratio(basis: str, column: str, flag: Flag, vi: str, en: str) -> Definition:
    """A share of the dossiers handled in the period."""
    text_vi, text_en = _of_handled(vi, en)
    return Definition(basis, Kind.DOSSIER_RATIO, text_vi, text_en, Counter(column, HANDLED, flag), HANDLED_COUNT)


_DECIDED_VI, _DECIDED_EN = "thủ tục có quyết định công bố trong kỳ", "procedures decided in the period"
_FEE_PROCS_VI, _FEE_PROCS_EN = "thủ tục có phí, lệ phí có hồ sơ xử lý", "fee-bearing procedures with a dossier handled"

DEFINITIONS: dict[str, Definition] = {
    d.id: d
    for d in (
        Definition(
            "1.1",
            Kind.CENTRAL_CATALOGUE,
            f"thủ tục công bố trước ngày hiệu lực ≥ 20 ngày làm việc / {_DECIDED_VI}",
            f"procedures decided ≥ 20 working days before taking effect / {_DECIDED_EN}",
        ),
        Definition(
            "1.2",
            Kind.CENTRAL_CATALOGUE,
            f"thủ tục công khai trong 10 ngày làm việc sau quyết định / {_DECIDED_VI}",
            f"procedures publicised within 10 working days of the decision / {_DECIDED_EN}",
        ),
        Definition(
            "1.3",
            Kind.CENTRAL_CATALOGUE,
            "thủ tục có hiệu lực được niêm yết đầy đủ / thủ tục có hiệu lực",
            "procedures in force listed completely / procedures in force",
        ),
        _handled_ratio(
            "1.4", "synced", SYNCED, "hồ sơ đã đồng bộ lên Cổng DVCQG", "dossiers synced to the national portal"
        ),
        Definition(
            "2.1", Kind.DOSSIER_RATIO, *_of_handled("hồ sơ đúng hạn", "dossiers on time"), ON_TIME_COUNT, HANDLED_COUNT
        ),
        Definition(
            "2.2",
            Kind.DOSSIER_AVERAGE,
            "tổng ngày làm việc giải quyết / hồ sơ kết thúc trong kỳ",
            "working days of handling / dossiers whose clock ended in the period",
        ),
        _handled_ratio(
            "3.1",
            "result",
            Flag("RESULT_DIGITIZED", 4, "v.result_digitized"),
            "hồ sơ có kết quả điện tử",
            "dossiers with an electronic result",
        ),
        _handled_ratio(
            "3.2",
            "dig_ok",
            Flag("DIGITISED_OK", 5, "v.digitised and v.electronic_result_ok"),
            "hồ sơ được số hóa thành phần (và kết quả khi phải trả kết quả)",
            "dossiers with a component digitised (and the result, where one is returned)",
        ),
        _handled_ratio(
            "3.3",
            "reused",
            Flag("REUSED", 6, "v.reused"),
            "hồ sơ tái sử dụng dữ liệu số hóa",
            "dossiers reusing digitised data",
        ),
        _handled_ratio(
            "3.4",
            "personal",
            Flag("PERSONAL_STORE", 7, "v.personal_store"),
            "hồ sơ dùng kho dữ liệu cá nhân",
            "dossiers using the personal data store",
        ),
        _handled_ratio(
            "3.5",
            "population",
            Flag("POPULATION", 8, "v.population_data_used"),
            "hồ sơ khai thác dữ liệu dân cư",
            "dossiers using population data",
        ),
        Definition(
            "3.6",
            Kind.PROCEDURE_RATIO,
            "thủ tục cho công dân có hồ sơ khai thác dữ liệu dân cư / thủ tục cho công dân có hồ sơ xử lý",
            "citizen procedures with a dossier using population data / citizen procedures with a dossier handled",
            Flag("CITIZEN_POPULATION", 10, "v.for_citizens and v.population_data_used"),
            FOR_CITIZENS,
        ),
        Definition(
            "4.1",
            Kind.UNIT_CATALOGUE,
            "thủ tục cung cấp trực tuyến / thủ tục đơn vị giải quyết",
            "procedures offered online / procedures the unit handles",
        ),
        Definition(
            "4.2",
            Kind.PROCEDURE_RATIO,
            "thủ tục trực tuyến có hồ sơ nộp trực tuyến / thủ tục cung cấp trực tuyến",
            "online procedures with a dossier submitted online / procedures offered online",
            Flag("ONLINE", 11, "v.online"),
            online_catalogue=True,
        ),
        Definition(
            "4.3",
            Kind.DOSSIER_RATIO,
            "hồ sơ nộp trực tuyến (có kết quả điện tử nếu trả kết quả) × tỷ lệ 1.4 / hồ sơ tiếp nhận trong kỳ",
            "dossiers submitted online (with an electronic result where one is returned) × 1.4's ratio"
            " / dossiers received in the period",
            Counter("online_counted", RECEIVED, Flag("ONLINE_COUNTED", 12, "v.online_counted")),
            RECEIVED_COUNT,
            scaled_by="1.4",
        ),
        Definition(
            "4.4",
            Kind.PROCEDURE_RATIO,
            f"thủ tục có phí, lệ phí có hồ sơ ghi nhận thanh toán / {_FEE_PROCS_VI}",
            f"fee-bearing procedures with a payment recorded / {_FEE_PROCS_EN}",
            Flag("FEE_PAYMENT", 14, "v.has_fee and v.has_payment"),
            HAS_FEE,
        ),
        Definition(
            "4.5",
            Kind.PROCEDURE_RATIO,
            f"thủ tục có phí, lệ phí có hồ sơ thanh toán trực tuyến trong kỳ / {_FEE_PROCS_VI}",
            f"fee-bearing procedures with a dossier paid online in the period / {_FEE_PROCS_EN}",
            Flag("FEE_PAID_IN_PERIOD", 15, "v.has_fee and v.paid_online_in_period"),
            HAS_FEE,
        ),
        Definition(
            "4.6",
            Kind.DOSSIER_RATIO,
            "hồ sơ thanh toán trực tuyến / hồ sơ có phí, lệ phí (khác 0 đồng) tiếp nhận trong kỳ",
            "dossiers paid online / fee-bearing dossiers (not 0 VND) received in the period",
            Counter(
                "fee_paid",
                RECEIVED,
                Flag("FEE_DOSSIER_PAID", 17, "v.has_fee and not v.payments_all_zero and v.paid_online"),
            ),
            Counter("fee_dossier", RECEIVED, FEE_DOSSIER),
        ),
        Definition(
            "5.1",
            Kind.PETITION,
            "phản ánh, kiến nghị được phân loại / phản ánh, kiến nghị tiếp nhận trong kỳ",
            "petitions classified / petitions received in the period",
            petition=("received_in_period", "classified"),
        ),
        Definition(
            "5.2",
            Kind.PETITION,
            "phản ánh, kiến nghị xử lý đúng hạn / phản ánh, kiến nghị xử lý trong kỳ",
            "petitions handled on time / petitions handled in the period",
            petition=("handled_in_period", "on_time"),
        ),
        Definition(
            "5.3",
            Kind.PETITION,
            "phản ánh, kiến nghị được hài lòng / phản ánh, kiến nghị tiếp nhận trong kỳ",
            "petitions satisfied (on time, likes ≥ dislikes, not petitioned again) / petitions received in the period",
            petition=("received_in_period", "satisfied"),
        ),
        Definition(
            "5.4",
            Kind.RATING,
            *_of_handled(
                "hồ sơ đúng hạn, không bị đánh giá không hài lòng, không bị phản ánh",
                "dossiers on time, not rated dissatisfied, not named in a petition",
            ),
            ON_TIME_COUNT,
            HANDLED_COUNT,
            excepted=ON_TIME_EXCEPTED,
        ),
    )
}


def _terms(d: Definition) -> Iterable[Counter | Flag]:
    # Denominator first: the derived column orders are the tables' (bases, then as declared).
    for term in (d.denominator, d.numerator, d.excepted):
        if term is not None:
            yield term


def _flags() -> tuple[Flag, ...]:
    out: dict[str, Flag] = {HANDLED.name: HANDLED, RECEIVED.name: RECEIVED}
    for d in DEFINITIONS.values():
        for term in _terms(d):
            for f in term.flags if isinstance(term, Counter) else (term,):
                if out.setdefault(f.name, f) != f:
                    raise ValueError(f"flag {f.name} declared twice, differently")
    flags = tuple(sorted(out.values(), key=lambda f: f.bit))
    if len({f.bit for f in flags}) != len(flags):
        raise ValueError("two flags share a bit")
    return flags


#: Every stored flag, by bit.
FLAGS = _flags()
#: The flags as an IntFlag (for readable masks in tests and SQL).
F = IntFlag("F", [(f.name, f.mask) for f in FLAGS])  # type: ignore[misc]


def _sums() -> dict[str, int]:
    out: dict[str, int] = {HANDLED_COUNT.column: HANDLED_COUNT.mask, RECEIVED_COUNT.column: RECEIVED_COUNT.mask}
    for d in DEFINITIONS.values():
        if d.kind in (Kind.DOSSIER_RATIO, Kind.RATING):
            for term in _terms(d):
                assert isinstance(term, Counter), d.id
                if out.setdefault(term.column, term.mask) != term.mask:
                    raise ValueError(f"counter {term.column} declared twice, differently")
    return out


#: ``scoring.unit_tally`` counters: name → the flags a contribution must all carry to count.
SUMS = _sums()
#: Per dossier-count computation: (numerator counter, denominator counter).
DOSSIER_RATIOS: dict[str, tuple[str, str]] = {
    d.id: (d.numerator.column, d.denominator.column)
    for d in DEFINITIONS.values()
    if d.kind is Kind.DOSSIER_RATIO and isinstance(d.numerator, Counter) and isinstance(d.denominator, Counter)
}
#: ``scoring.unit_procedure_tally`` columns: the bits the distinct-procedure computations read.
PROCEDURE_BITS: dict[str, int] = {
    f.column: f.mask
    for d in DEFINITIONS.values()
    if d.kind is Kind.PROCEDURE_RATIO
    for f in _terms(d)
    if isinstance(f, Flag)
}


def _compile_flags_of(flags: tuple[Flag, ...], name: str = "flags_of") -> Callable[[DossierVerdict], int]:
    """One function returning the OR of every flag's bit whose predicate holds: the same plain-int
    expression as written by hand (no loop, no IntFlag arithmetic: ~70 µs a dossier otherwise)."""
    terms = "\n        | ".join(f"({f.mask} if {f.when} else 0)" for f in flags) or "0"
    source = f"def {name}(v):\n    return (\n        {terms}\n    )\n"
    namespace: dict[str, Any] = {}
    # The source is built from the constant declarations above, never from input.
    exec(compile(source, f"<services.scoring.domain.definitions.{name}>", "exec"), namespace)  # noqa: S102
    fn: Callable[[DossierVerdict], int] = namespace[name]
    fn.__doc__ = "The stored flags of a dossier's verdict for one period (:data:`FLAGS`)."
    return fn


flags_of = _compile_flags_of(FLAGS)

_VERDICT_FIELDS = frozenset(f.name for f in fields(DossierVerdict))


def _reads(name: str) -> frozenset[str]:
    """The verdict fields that reading ``v.<name>`` reads: the field itself, or those a property
    of :class:`DossierVerdict` reads (its code's attribute names, properties followed)."""
    if name in _VERDICT_FIELDS:
        return frozenset({name})
    prop = getattr(DossierVerdict, name, None)
    if not isinstance(prop, property) or prop.fget is None:
        raise ValueError(f"a flag reads v.{name}: neither a field nor a property of DossierVerdict")
    out: set[str] = set()
    for attr in prop.fget.__code__.co_names:
        if attr in _VERDICT_FIELDS or isinstance(getattr(DossierVerdict, attr, None), property):
            out |= _reads(attr)
    return frozenset(out)


def reads_period(flag: Flag) -> bool:
    """Whether ``flag``'s predicate reads a field that depends on the period judged
    (:data:`~.verdict.PERIOD_FIELDS`), found in its expression: otherwise it is the same for
    every period judged at one instant."""
    names = {n.attr for n in ast.walk(ast.parse(flag.when, mode="eval")) if isinstance(n, ast.Attribute)}
    return any(_reads(n) & PERIOD_FIELDS for n in names)


# Judging places one verdict in each period judged at its instant (verdict.in_period): the bits of
# the flags reading no period field are computed once per instant, the others once per period.
# Together they are flags_of: instant_flags_of(v) | period_flags_of(v) == flags_of(v).
instant_flags_of = _compile_flags_of(tuple(f for f in FLAGS if not reads_period(f)), "instant_flags_of")
period_flags_of = _compile_flags_of(tuple(f for f in FLAGS if reads_period(f)), "period_flags_of")
