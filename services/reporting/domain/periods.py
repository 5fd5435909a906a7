"""Period labels (kỳ) as reporting reads them: ``2026-10`` month, ``2026-Q3`` quarter, ``2026`` year."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from shared.contracts.scoring import (
    PERIOD_MONTH_PATTERN,
    PERIOD_QUARTER_PATTERN,
    PERIOD_RANGE_PATTERN,
    PERIOD_YEAR_PATTERN,
)

# Scoring's patterns (ASCII digits: ``\d`` took ``٢٠٢٦-١٠`` for 2026-10), matched whole
# (``fullmatch``: ``$`` also matches before a final newline, and "2026\n" was taken for a year,
# then written into an export's file name header). Reporting reads labels as scoring stores them,
# so two rules more: a capital ``Q``, and years from 1000 (year 0 broke the English display,
# ``date(0, …)``, and no period of SQI's lies before).
MONTH = re.compile(PERIOD_MONTH_PATTERN)
QUARTER = re.compile(PERIOD_QUARTER_PATTERN)
YEAR = re.compile(PERIOD_YEAR_PATTERN)
RANGE = re.compile(PERIOD_RANGE_PATTERN)


def match_label(pattern: re.Pattern[str], label: str) -> re.Match[str] | None:
    """``label`` matched whole by one of the patterns above, with reporting's two rules."""
    m = pattern.fullmatch(label)
    if m is None or label.startswith("0") or (pattern is QUARTER and "q" in label):
        return None
    return m


def kind_of(label: str) -> str | None:
    """``month``, ``quarter``, ``year``, or None for anything else (a custom range)."""
    if (m := match_label(MONTH, label)) and 1 <= int(m.group(2)) <= 12:
        return "month"
    if match_label(QUARTER, label):
        return "quarter"
    if match_label(YEAR, label):
        return "year"
    return None


def previous(label: str) -> str | None:
    """The period just before ``label``, of the same kind."""
    if m := match_label(MONTH, label):
        y, mo = int(m.group(1)), int(m.group(2))
        return f"{y - 1:04d}-12" if mo == 1 else f"{y:04d}-{mo - 1:02d}"
    if m := match_label(QUARTER, label):
        y, q = int(m.group(1)), int(m.group(2))
        return f"{y - 1:04d}-Q4" if q == 1 else f"{y:04d}-Q{q - 1}"
    if m := match_label(YEAR, label):
        return f"{int(m.group(1)) - 1:04d}"
    return None


def last_n(label: str, n: int) -> list[str]:
    """``label`` and the n-1 periods before it, oldest first."""
    out = [label]
    while len(out) < n and (p := previous(out[-1])) is not None:
        out.append(p)
    return out[::-1]


def month_of(today: date) -> str:
    return f"{today.year:04d}-{today.month:02d}"


def latest_closed_month(labels: Iterable[str], today: date) -> str | None:
    """The latest month before ``today``'s month that has scores; else the latest month at all."""
    months = sorted(x for x in labels if kind_of(x) == "month")
    if not months:
        return None
    closed = [m for m in months if m < month_of(today)]
    return closed[-1] if closed else months[-1]


def display(label: str, lang: str) -> str:
    """How people read a period: ``Tháng 10/2026`` / ``October 2026``."""
    if m := match_label(MONTH, label):
        y, mo = int(m.group(1)), int(m.group(2))
        if lang == "en":
            return date(y, mo, 1).strftime("%B %Y")
        return f"Tháng {mo}/{y}"
    if m := match_label(QUARTER, label):
        return f"Q{m.group(2)} {m.group(1)}" if lang == "en" else f"Quý {m.group(2)}/{m.group(1)}"
    if m := match_label(YEAR, label):
        return f"Year {label}" if lang == "en" else f"Năm {label}"
    return label
