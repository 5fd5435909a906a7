"""Methodology as data (bộ chỉ số): indicators, conversions, groups, grade bands, versions.

A methodology document is JSON (see ``methodologies/*.json``); loading never needs code changes,
so an admin can upload a new version. :func:`validate_methodology` lists every problem of a
document (empty list = valid) before it is accepted.

Every indicator names a ``basis``: the tax-2025 computation (1.1 … 5.4) whose numerator and
denominator it uses. portal-766 reuses the same computations under the portal's codes; its
ELECTRONIC_CERTIFIED_COPY has no basis and a constant full score (not a tax service).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from shared.contracts.scoring import METHODOLOGY_ID_PATTERN

from .definitions import DEFINITIONS

Conversion = Literal["linear", "threshold", "constant"]
ZeroRule = Literal["zero", "full", "null"]
MeasuredAt = Literal["central", "unit"]

#: The computations SQI knows how to count (tax-2025 ids). ``2.2`` and ``5.1`` are shown only.
KNOWN_BASES: frozenset[str] = frozenset(DEFINITIONS)  # one declaration each (definitions.py)
BUILTIN_IDS = ("tax-2025", "portal-766")
DEFAULT_METHODOLOGY = "tax-2025"


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator (chỉ số thành phần)."""

    id: str
    name_vi: str
    name_en: str
    max_points: Decimal
    conversion: Conversion
    threshold: float  # percent; 100 for linear
    zero_rule: ZeroRule
    measured_at: MeasuredAt  # "central": computed at HQ, units below inherit its points
    basis: str | None  # tax-2025 computation id; None only for a constant indicator
    rounds_ratio_first: bool = False  # 4.4–4.6: P = r2(100 n / d) before converting
    scored: bool = True  # False: shown, not scored (2.2, 5.1)


@dataclass(frozen=True, slots=True)
class Group:
    """A group of indicators (nhóm chỉ số) with its maximum."""

    id: str
    name_vi: str
    name_en: str
    max_points: Decimal
    indicators: tuple[Indicator, ...]


@dataclass(frozen=True, slots=True)
class GradeBand:
    """A grade (xếp loại) from ``min_total`` upwards."""

    code: str
    label_vi: str
    label_en: str
    min_total: Decimal


@dataclass(frozen=True, slots=True)
class Methodology:
    """A versioned methodology (phiên bản phương pháp đánh giá)."""

    id: str
    version: int
    name_vi: str
    name_en: str
    effective_from: date
    min_dossiers: int
    groups: tuple[Group, ...]
    grade_bands: tuple[GradeBand, ...]  # descending by min_total

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        return tuple(i for g in self.groups for i in g.indicators)

    @property
    def max_total(self) -> Decimal:
        return sum((g.max_points for g in self.groups), Decimal(0))

    def grade(self, total: Decimal) -> GradeBand:
        """The first band whose minimum the total reaches (bands are descending)."""
        for band in self.grade_bands:
            if total >= band.min_total:
                return band
        return self.grade_bands[-1]


def _dec(value: Any) -> Decimal:
    # Through str so that 6 and 6.0 and "6" are the same exact decimal; NaN and infinities (the
    # JSON parser takes them) are no number of points.
    number = Decimal(str(value))
    if not number.is_finite():
        raise ArithmeticError(f"{value!r} is not a finite number")
    return number


METHODOLOGY_ID = re.compile(METHODOLOGY_ID_PATTERN)  # as reporting's queries take them too
MAX_INT = 2**31 - 1  # versions and minimum counts: far beyond use, within every store and encoder


def _text_errors(d: Mapping[str, Any], keys: Sequence[str], where: str) -> list[str]:
    """The keys of ``d`` that are present but not non-empty strings."""
    return [
        f"{where}{key}: must be a non-empty string"
        for key in keys
        if key in d and (not isinstance(d[key], str) or not d[key].strip())
    ]


def _nul_errors(value: Any, where: str = "methodology") -> list[str]:
    """Strings anywhere in the document holding a NUL (no database stores one)."""
    if isinstance(value, str):
        return [f"{where}: must not contain a NUL character"] if "\x00" in value else []
    if isinstance(value, Mapping):
        return [e for k, v in value.items() for e in _nul_errors(v, f"{where}.{k}")] + _nul_errors(
            [k for k in value if isinstance(k, str)], where
        )
    if isinstance(value, Sequence):
        return [e for i, v in enumerate(value) for e in _nul_errors(v, f"{where}[{i}]")]
    return []


def _as_dict(doc: Any, where: str, errors: list[str]) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        errors.append(f"{where}: must be an object")
        return {}
    return doc


def validate_methodology(doc: Any) -> list[str]:
    """All the errors of a methodology document (a parsed JSON object); empty when valid."""
    errors: list[str] = []
    d = _as_dict(doc, "methodology", errors)
    if not d:
        return errors or ["methodology: empty document"]
    errors += _nul_errors(d)
    for key in ("id", "name_vi", "name_en", "effective_from", "groups", "grade_bands"):
        if key not in d:
            errors.append(f"{key}: missing")
    if not isinstance(d.get("id", ""), str) or not METHODOLOGY_ID.fullmatch(d.get("id", "")):
        errors.append("id: must be 1 to 64 lower-case letters, digits or '-', starting with a letter or digit")
    errors += _text_errors(d, ("name_vi", "name_en"), "")
    version = d.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_INT:
        errors.append(f"version: must be an integer from 1 to {MAX_INT}")
    effective_from = d.get("effective_from")
    try:
        if not isinstance(effective_from, str):
            raise ValueError(effective_from)
        date.fromisoformat(effective_from)
    except ValueError:
        errors.append("effective_from: must be an ISO date (YYYY-MM-DD)")
    min_d = d.get("min_dossiers", 30)
    if not isinstance(min_d, int) or isinstance(min_d, bool) or not 0 <= min_d <= MAX_INT:
        errors.append(f"min_dossiers: must be an integer from 0 to {MAX_INT}")

    total = Decimal(0)
    total_ind = Decimal(0)
    seen: set[str] = set()
    groups = d.get("groups")
    if not isinstance(groups, Sequence) or isinstance(groups, str) or not groups:
        errors.append("groups: must be a non-empty list")
        groups = []
    for gi, graw in enumerate(groups):
        g = _as_dict(graw, f"groups[{gi}]", errors)
        for key in ("id", "name_vi", "name_en"):
            if g and key not in g:
                errors.append(f"groups[{gi}].{key}: missing")
        errors += _text_errors(g, ("id", "name_vi", "name_en"), f"groups[{gi}].")
        gid = str(g.get("id", f"#{gi}"))
        if gid in seen:
            errors.append(f"group {gid}: duplicate id")
        seen.add(str(gid))
        try:
            gmax = _dec(g.get("max_points"))
        except ArithmeticError:
            errors.append(f"group {gid}: max_points must be a number")
            gmax = Decimal(0)
        isum = Decimal(0)
        inds = g.get("indicators")
        if not isinstance(inds, Sequence) or isinstance(inds, str) or not inds:
            errors.append(f"group {gid}: indicators must be a non-empty list")
            inds = []
        for ii, iraw in enumerate(inds):
            ind = _as_dict(iraw, f"group {gid} indicators[{ii}]", errors)
            errors += _text_errors(ind, ("id", "name_vi", "name_en"), f"group {gid} indicators[{ii}].")
            iid = str(ind.get("id", f"{gid}#{ii}"))
            errors.extend(_validate_indicator(iid, ind))
            if iid in seen:
                errors.append(f"indicator {iid}: duplicate id")
            seen.add(iid)
            with contextlib.suppress(ArithmeticError):
                isum += _dec(ind.get("max_points", 0))
        if isum != gmax:
            errors.append(f"group {gid}: max_points {gmax} != sum of its indicators {isum}")
        total += gmax
        total_ind += isum
    if total != 100:
        errors.append(f"groups: maxima sum to {total}, not 100")
    if total_ind != 100:
        errors.append(f"indicators: maxima sum to {total_ind}, not 100")

    bands = d.get("grade_bands")
    if not isinstance(bands, Sequence) or isinstance(bands, str) or not bands:
        errors.append("grade_bands: must be a non-empty list")
        bands = []
    previous: Decimal | None = None
    codes: set[str] = set()
    for bi, braw in enumerate(bands):
        b = _as_dict(braw, f"grade_bands[{bi}]", errors)
        for key in ("code", "label_vi", "label_en", "min_total"):
            if key not in b:
                errors.append(f"grade_bands[{bi}].{key}: missing")
        errors += _text_errors(b, ("code", "label_vi", "label_en"), f"grade_bands[{bi}].")
        code = str(b.get("code"))
        if code in codes:
            errors.append(f"grade_bands[{bi}]: duplicate code {code}")
        codes.add(code)
        try:
            m = _dec(b.get("min_total"))
        except ArithmeticError:
            errors.append(f"grade_bands[{bi}].min_total: must be a number")
            continue
        if previous is not None and m >= previous:
            errors.append(f"grade_bands[{bi}]: bands must be strictly descending by min_total")
        previous = m
    if previous is not None and previous != 0:
        errors.append("grade_bands: the last band must start at 0 so every total has a grade")
    return errors


def _validate_indicator(iid: str, ind: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    where = f"indicator {iid}"
    for key in ("id", "name_vi", "name_en", "max_points", "conversion", "zero_rule"):
        if key not in ind:
            errors.append(f"{where}: {key} missing")
    try:
        mp = _dec(ind.get("max_points", 0))
        if mp < 0:
            errors.append(f"{where}: max_points must be >= 0")
    except ArithmeticError:
        errors.append(f"{where}: max_points must be a number")
        mp = Decimal(0)
    conv = ind.get("conversion")
    if conv not in ("linear", "threshold", "constant"):
        errors.append(f"{where}: conversion must be linear, threshold or constant")
    threshold = ind.get("threshold", 100)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 < threshold <= 100:
        errors.append(f"{where}: threshold must be a percentage in (0, 100]")
    elif conv == "linear" and threshold != 100:
        errors.append(f"{where}: a linear conversion has threshold 100")
    elif conv == "threshold" and threshold == 100:
        errors.append(f"{where}: a threshold conversion needs a threshold below 100")
    if ind.get("zero_rule") not in ("zero", "full", "null"):
        errors.append(f"{where}: zero_rule must be zero, full or null")
    if ind.get("measured_at", "unit") not in ("central", "unit"):
        errors.append(f"{where}: measured_at must be central or unit")
    basis = ind.get("basis")
    if conv == "constant":
        if basis is not None:
            errors.append(f"{where}: a constant indicator has no basis")
    elif basis not in KNOWN_BASES:
        errors.append(f"{where}: basis {basis!r} is not a known computation")
    scored = ind.get("scored", True)
    if not isinstance(scored, bool):
        errors.append(f"{where}: scored must be true or false")
    elif not scored and mp != 0:
        errors.append(f"{where}: an indicator that is not scored has max_points 0")
    if not isinstance(ind.get("rounds_ratio_first", False), bool):
        errors.append(f"{where}: rounds_ratio_first must be true or false")
    return errors


def methodology_from_dict(doc: Mapping[str, Any]) -> Methodology:
    """Build a :class:`Methodology`; raises ValueError listing every problem if invalid."""
    errors = validate_methodology(doc)
    if errors:
        raise ValueError("invalid methodology: " + "; ".join(errors))
    groups = tuple(
        Group(
            id=g["id"],
            name_vi=g["name_vi"],
            name_en=g["name_en"],
            max_points=_dec(g["max_points"]),
            indicators=tuple(
                Indicator(
                    id=i["id"],
                    name_vi=i["name_vi"],
                    name_en=i["name_en"],
                    max_points=_dec(i["max_points"]),
                    conversion=i["conversion"],
                    threshold=float(i.get("threshold", 100)),
                    zero_rule=i["zero_rule"],
                    measured_at=i.get("measured_at", "unit"),
                    basis=i.get("basis"),
                    rounds_ratio_first=bool(i.get("rounds_ratio_first", False)),
                    scored=bool(i.get("scored", True)),
                )
                for i in g["indicators"]
            ),
        )
        for g in doc["groups"]
    )
    bands = tuple(
        GradeBand(code=b["code"], label_vi=b["label_vi"], label_en=b["label_en"], min_total=_dec(b["min_total"]))
        for b in doc["grade_bands"]
    )
    return Methodology(
        id=doc["id"],
        version=int(doc.get("version", 1)),
        name_vi=doc["name_vi"],
        name_en=doc["name_en"],
        effective_from=date.fromisoformat(doc["effective_from"]),
        min_dossiers=int(doc.get("min_dossiers", 30)),
        groups=groups,
        grade_bands=bands,
    )


def load_methodology_json(text: str | bytes) -> Methodology:
    """Parse and validate a methodology JSON document."""
    return methodology_from_dict(json.loads(text))


def builtin_document(methodology_id: str) -> dict[str, Any]:
    """The shipped JSON document of ``tax-2025`` or ``portal-766``."""
    if methodology_id not in BUILTIN_IDS:
        raise KeyError(methodology_id)
    res = resources.files(__name__.rpartition(".")[0]).joinpath("methodologies").joinpath(f"{methodology_id}.json")
    doc: dict[str, Any] = json.loads(res.read_text(encoding="utf-8"))
    return doc


def load_builtin(methodology_id: str = DEFAULT_METHODOLOGY) -> Methodology:
    """The shipped methodology ``tax-2025`` (default) or ``portal-766``."""
    return methodology_from_dict(builtin_document(methodology_id))
