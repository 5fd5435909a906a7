"""Exports of the reporting service (xuất báo cáo): the ranking as CSV and XLSX, the monthly
briefing as a Vietnamese PDF. Pure renderers: they take the ``services.reporting.domain.briefing``
dataclasses and return the file's bytes; the routes decide what to fetch and who may see it.
"""

from services.reporting.exports.csv_export import ranking_csv
from services.reporting.exports.pdf_briefing import PdfTypesettingUnavailable, briefing_html, briefing_pdf
from services.reporting.exports.xlsx_export import ranking_xlsx

__all__ = ["PdfTypesettingUnavailable", "briefing_html", "briefing_pdf", "ranking_csv", "ranking_xlsx"]
