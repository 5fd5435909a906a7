"""Period labels take ASCII digits only (Python's ``\\d`` also takes Arabic-Indic, full-width…)."""

from __future__ import annotations

import pytest

from services.scoring.domain import parse_period


@pytest.mark.parametrize(
    "label", ["٢٠٢٦-١٠", "２０２６-10", "2026-Q٣", "٢٠٢٦", "2026-10-01..2026-10-٠٥", "۲۰۲۶-10", "2026-1\u0660"]
)
def test_non_ascii_digits_are_not_a_period(label: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_period(label)


@pytest.mark.parametrize("label", ["2026-10", "2026-Q3", "2026-q3", "2026", "2026-10-01..2026-10-05", " 2026-10 "])
def test_ascii_labels_still_parse(label: str) -> None:
    assert parse_period(label).label.startswith("2026")
