"""The ranking as CSV that opens correctly in Excel: UTF-8 with BOM, CRLF, comma, quoted as needed."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal

from services.reporting.domain.briefing import GroupLabel, RankingRow
from services.reporting.exports.columns import Cell, ranking_cells, ranking_columns
from services.reporting.exports.labels import plain_number

# A spreadsheet treats a cell starting with one of these as a formula (CSV/formula injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """Prefix text that a spreadsheet would run as a formula with ``'`` so it stays text."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # never reached by the columns, but bool is an int
        return "1" if value else "0"
    if isinstance(value, int | Decimal):
        return plain_number(value)
    return neutralise_formula(value)


def ranking_csv(rows: Sequence[RankingRow], *, groups: Sequence[GroupLabel]) -> bytes:
    """One row per unit, Vietnamese headers, numbers as numbers (``.`` decimal, no separators)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=",", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    # Headers too: a group's header is made of its id and name, from a methodology document.
    writer.writerow([neutralise_formula(c.header) for c in ranking_columns(groups)])
    for row in rows:
        writer.writerow([_csv_cell(v) for v in ranking_cells(row, groups)])
    return out.getvalue().encode("utf-8-sig")
