"""The monthly briefing PDF reads correctly in Vietnamese: real text with diacritics (extracted
back from the PDF), fonts that carry every Vietnamese glyph, A4 pages numbered, one unit's pages."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
import unicodedata
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from services.reporting.exports import briefing_html, briefing_pdf
from services.reporting.exports.pdf_briefing import VIETNAMESE_FONT_FAMILIES, typeset
from shared.text import DIRECTION_CONTROLS
from tests.unit.reporting.exports_sample import briefing

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
A4_POINTS = (595, 842)


def text_of(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    # Compare in NFC: a PDF may hand back "ế" as "ê" + combining acute.
    return reader, unicodedata.normalize("NFC", text)


@pytest.fixture(scope="module")
def unit_briefing() -> tuple[bytes, PdfReader, str]:
    pdf = briefing_pdf(briefing())
    reader, text = text_of(pdf)
    return pdf, reader, text


def test_briefing_speaks_correct_vietnamese(unit_briefing: tuple[bytes, PdfReader, str]) -> None:
    _, _, text = unit_briefing
    flat = re.sub(r"\s+", " ", text)  # a heading may break over two lines
    for words in (
        "BÁO CÁO TÓM TẮT CHỈ SỐ CHẤT LƯỢNG PHỤC VỤ NGƯỜI NỘP THUẾ",
        "Kỳ báo cáo: tháng 10/2026",
        "Phạm vi: Cục Thuế (CT)",
        "Dữ liệu tính đến: 08:15 ngày 01/11/2026 (giờ Việt Nam)",
        "Bảng xếp hạng",
        "Thuế tỉnh Đắk Lắk",
        "Thuế Thành phố Hồ Chí Minh",
        "Thuế tỉnh Thừa Thiên Huế",
        "Xuất sắc",
        "Trung bình",
        "Yếu",
        "Đơn vị tạm tính",
        "Tăng điểm nhiều nhất",
        "Giảm điểm nhiều nhất",
        "Chỉ tiêu mất nhiều điểm nhất",
        "Tái sử dụng dữ liệu số hóa",
        "Cảnh báo",
        "Hồ sơ quá hạn: 1",
        "Hồ sơ hoàn thuế quá hạn 3 ngày làm việc",
        "Nguồn dữ liệu ngừng gửi",
    ):
        assert words in flat, words
    assert "Dẫn đầu là Thuế Thành phố Hà Nội (93,45 điểm, Xuất sắc)" in flat
    assert "Giảm điểm nhiều nhất: Thuế tỉnh Nghệ An (\u22126,20)" in flat
    assert "93,45" in text and "12.840" in text  # Vietnamese number style in the prose document


def test_briefing_embeds_only_vietnamese_capable_fonts(unit_briefing: tuple[bytes, PdfReader, str]) -> None:
    _, reader, _ = unit_briefing
    fonts: set[str] = set()
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for ref in resources.get("/Font", {}).values():
            font: Any = ref.get_object()
            fonts.add(str(font["/BaseFont"]).split("+", 1)[-1])
            for descendant in font.get("/DescendantFonts", [font]):
                descriptor = descendant.get_object()["/FontDescriptor"].get_object()
                assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), "not embedded"
    families = tuple(name.replace(" ", "-") for name in VIETNAMESE_FONT_FAMILIES)
    assert fonts and all(f.startswith(families) for f in fonts), fonts


def test_briefing_is_a4_with_page_numbers_and_the_unit_pages(unit_briefing: tuple[bytes, PdfReader, str]) -> None:
    _, reader, text = unit_briefing
    pages = len(reader.pages)
    assert pages >= 2
    for page in reader.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == A4_POINTS
    assert f"Trang 1 / {pages}" in text and f"Trang {pages} / {pages}" in text
    last_page = unicodedata.normalize("NFC", reader.pages[-1].extract_text())
    assert "Đơn vị: Thuế tỉnh Đắk Lắk" in last_page
    assert "Chỉ tiêu: tử số, mẫu số, điểm so với tối đa" in last_page
    assert re.search(r"1\.187\s+1\.342\s+88,45%\s+8,85\s+10,00\s+1,15", last_page), "2.1: n, d, ratio, points"
    assert re.search(r"4\.023\s+1\.187\s+3,39\s", last_page), "2.2: an average in working days, not a percentage"
    assert "Không áp dụng trong kỳ" in last_page
    assert "Xu hướng tổng điểm" in last_page and "2026-05" in last_page
    assert "HS-0002" in last_page and "CB-021" in last_page


def test_briefing_without_unit_or_scores_still_reads_well() -> None:
    empty = replace(
        briefing(with_unit=False), ranking=(), movers_up=(), movers_down=(), weakest_indicators=(), warnings=()
    )
    empty = replace(empty, computed_at=None, period="2026-Q3", scope_name="Thuế tỉnh Đắk Lắk", scope_code="P03")
    _, text = text_of(briefing_pdf(empty))
    assert "Kỳ báo cáo: quý III/2026 · Phạm vi: Thuế tỉnh Đắk Lắk (P03)" in text
    assert "Dữ liệu tính đến: chưa có số liệu" in text
    assert "Chưa có đơn vị nào được xếp hạng trong kỳ này." in text
    assert "Không có cảnh báo." in text
    assert "Đơn vị: " not in text


def test_briefing_html_escapes_what_units_send() -> None:
    rows = list(briefing().ranking)
    rows[0] = replace(rows[0], unit_name="<script>alert(1)</script> Thuế")
    html = briefing_html(replace(briefing(), ranking=rows))
    assert "<script>" not in html and "&lt;script&gt;" in html


def _text_runs(reader: PdfReader) -> list[tuple[int, float, str]]:
    """Every piece of text the pages draw: (page, x where it starts, text)."""
    runs: list[tuple[int, float, str]] = []
    for number, page in enumerate(reader.pages):

        def visit(text: str, cm: Any, tm: Any, _font: Any, _size: Any, number: int = number) -> None:
            if text.strip():  # the text matrix's origin, in page points through the current transform
                runs.append((number, float(tm[4] * cm[0] + tm[5] * cm[2] + cm[4]), text))

        page.extract_text(visitor_text=visit)
    return runs


def test_a_direction_control_in_a_name_turns_nothing_around() -> None:
    """A right-to-left override (U+202E) ending a unit's name would show the rest of the line
    reversed ("93,45" as "54,39"): the briefing carries no explicit direction control."""
    rows = list(briefing().ranking)
    rows[0] = replace(rows[0], unit_name="Thuế Thành phố Hà Nội\u202e")
    html = briefing_html(replace(briefing(), ranking=tuple(rows), scope_name="Cục Thuế\u2067"))
    assert not set(html) & set(DIRECTION_CONTROLS)
    assert "Dẫn đầu là Thuế Thành phố Hà Nội (93,45 điểm" in re.sub(r"\s+", " ", html)


def test_the_longest_names_and_codes_stay_on_the_page() -> None:
    """Unit names of up to 300 characters (as ingest allows), with or without spaces, and long
    codes wrap inside their cells: every column of the ranking stays on the A4 page."""
    spaced = ("Thuế cơ sở số 1 thành phố Hà Nội, quận Hoàn Kiếm, " * 6)[:300]
    unbroken = "Đ" * 300
    rows = list(briefing().ranking)
    rows[0] = replace(rows[0], unit_name=spaced)
    rows[1] = replace(rows[1], unit_name=unbroken, unit_code="P02" + "X" * 61)
    rows[-1] = replace(rows[-1], unit_name=unbroken)  # the provisional table
    long = replace(briefing(), ranking=tuple(rows), scope_name=spaced)
    reader = PdfReader(io.BytesIO(briefing_pdf(long)))
    width = float(reader.pages[0].mediabox.width)
    outside = [(page, round(x), text[:40]) for page, x, text in _text_runs(reader) if not 0 <= x < width]
    assert not outside, outside
    # An unbroken name is cut into lines, not drawn as one line running off the page.
    assert all(len(line) < 150 for line in text_of(briefing_pdf(long))[1].splitlines())


def _png(width: int = 4, height: int = 4) -> bytes:
    """A small opaque PNG: what a local file or a server would hand the typesetter."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_the_typesetter_loads_no_file_or_url_but_its_own(tmp_path: Path) -> None:
    """Defence in depth behind the escaping: should markup ever reach the briefing, it cannot make
    WeasyPrint read a local file (file:///etc/…) or call a URL from inside the cluster."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png())
    sheet = tmp_path / "sheet.css"
    sheet.write_text(f"body {{ background: url('{secret.as_uri()}'); }}", encoding="utf-8")
    html = (
        f'<html><head><link rel="stylesheet" href="{sheet.as_uri()}"></head><body><p>Báo cáo</p>'
        f'<img src="{secret.as_uri()}" alt=""><img src="http://127.0.0.1:9/x.png" alt="">'
        f"<div style=\"background: url('{secret.as_uri()}')\">x</div></body></html>"
    )
    reader = PdfReader(io.BytesIO(typeset(html)))
    assert sum(len(page.images) for page in reader.pages) == 0
    assert "Báo cáo" in unicodedata.normalize("NFC", reader.pages[0].extract_text())


def test_briefing_first_page_as_png(unit_briefing: tuple[bytes, PdfReader, str], tmp_path: Path) -> None:
    """The first page rendered to PNG (kept in test-artifacts/) for a person to look at."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed; ./sqi test installs it")
    pdf, _, _ = unit_briefing
    source = tmp_path / "briefing.pdf"
    source.write_bytes(pdf)
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(source), str(ARTIFACTS / "briefing")],
        check=True,
        timeout=60,
    )
    png = ARTIFACTS / "briefing.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
