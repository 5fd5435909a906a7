"""Figures reporting derives itself round as methodology.md rounds: half-up to 2 decimals
(``r2``), never banker's rounding — on the pages and in the briefing alike."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

from services.reporting.api.render import num
from services.reporting.exports.labels import count_vi, number_vi
from services.reporting.exports.pdf_briefing import briefing_html
from tests.unit.reporting.exports_sample import briefing


def test_the_briefing_average_rounds_half_up() -> None:
    sample = briefing(with_unit=False)
    # Two ranked offices at 80.12 and 80.13: the average is exactly 80.125, shown as r2 → 80,13.
    first, second = sample.ranking[:2]
    rows = [replace(first, total=Decimal("80.13"), rank=1), replace(second, total=Decimal("80.12"), rank=2)]
    html = briefing_html(replace(sample, ranking=rows))
    facts = re.search(r"Điểm trung bình</th><td>([^<]*)</td>", html)
    assert facts is not None and facts.group(1) == "80,13"


def test_numbers_round_half_up_everywhere() -> None:
    assert number_vi(Decimal("80.125")) == "80,13"
    assert number_vi(Decimal("2.345")) == "2,35"
    assert count_vi(36.745) == "36,75"  # a fractional numerator (4.3: × the sync rate)
    assert num(Decimal("80.125")) == "80.13"
    assert num(36.745) == "36.75"
