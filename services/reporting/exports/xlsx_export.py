"""The ranking as an Excel workbook (openpyxl): numeric cells with number formats, a frozen
header, an autofilter, sized columns, the title above the table, grade cells coloured and worded."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from services.reporting.domain.briefing import GroupLabel, RankingRow
from services.reporting.exports.columns import ranking_cells, ranking_columns

NUMBER_FORMATS = {"points": "0.00", "integer": "0", "signed": "+0;-0;0"}
HEADER_ROW = 3  # 1: title, 2: how to read it, 3: headers, 4…: units
READING_NOTE = (
    "Điểm theo thang 100. Đơn vị tạm tính (chưa đủ số hồ sơ để đánh giá công bằng) không được xếp hạng. "
    "Thay đổi hạng: so với kỳ trước (+ tăng, − giảm)."
)
# Light fills, dark enough text: the grade is also written, never shown by colour alone.
GRADE_FILLS = {
    "Xuất sắc": "C6EFCE",
    "Tốt": "DDEBF7",
    "Khá": "FFF2CC",
    "Trung bình": "FCE4D6",
    "Yếu": "F8CBAD",
}


def _text(value: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", value)


def ranking_xlsx(rows: Sequence[RankingRow], *, groups: Sequence[GroupLabel], title: str) -> bytes:
    columns = ranking_columns(groups)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Xếp hạng"
    sheet.cell(row=1, column=1, value=_text(title)).font = Font(bold=True, size=14)
    sheet.cell(row=1, column=1).data_type = "s"
    sheet.cell(row=2, column=1, value=READING_NOTE).font = Font(italic=True, color="555555")
    sheet.row_dimensions[HEADER_ROW].height = 45

    thin = Side(style="thin", color="A6A6A6")
    header_fill = PatternFill("solid", fgColor="1F3864")
    for index, column in enumerate(columns, start=1):
        cell = sheet.cell(row=HEADER_ROW, column=index, value=_text(column.header))
        cell.data_type = "s"  # a group's header comes from a methodology document: never a formula
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = header_fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = Border(bottom=thin)
        sheet.column_dimensions[get_column_letter(index)].width = column.width

    grade_column = 1 + next(i for i, c in enumerate(columns) if c.header == "Xếp loại")
    for offset, row in enumerate(rows, start=1):
        excel_row = HEADER_ROW + offset
        for index, (column, value) in enumerate(zip(columns, ranking_cells(row, groups), strict=True), start=1):
            cell = sheet.cell(row=excel_row, column=index)
            if value is None:
                continue
            if column.kind == "text":
                cell.value = _text(str(value))
                # Stored as a string even when it starts with "=": a name is never a formula.
                cell.data_type = "s"
            else:
                cell.value = float(value) if isinstance(value, Decimal) else value
                cell.number_format = NUMBER_FORMATS[column.kind]
        grade_cell = sheet.cell(row=excel_row, column=grade_column)
        if (fill := GRADE_FILLS.get(str(grade_cell.value))) is not None:
            grade_cell.fill = PatternFill("solid", fgColor=fill)

    last_column = get_column_letter(len(columns))
    last_row = HEADER_ROW + max(len(rows), 1)
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=3)  # header and unit code/name stay
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last_column}{last_row}"
    sheet.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    book.properties.title = _text(title)
    book.properties.creator = "SQI"

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
