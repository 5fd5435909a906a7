"""The monthly briefing (báo cáo tóm tắt tháng) as an A4 PDF, typeset by WeasyPrint.

A Jinja2 template and its stylesheet (``templates/``) lay the briefing out; WeasyPrint (HTML and
CSS → PDF, on Debian's Pango) sets it in a font with every Vietnamese glyph (DejaVu Sans, from
Debian's ``fonts-dejavu-core``; ``sqi_cli.infra.ensure_pdf_typesetting`` installs them). WeasyPrint
is imported on first use so the rest of reporting runs where Pango is missing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.reporting.domain.briefing import Briefing, RankingRow, WarningItem
from services.reporting.domain.text import shown
from services.reporting.exports import labels

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The font families the stylesheet asks for (briefing.css); each has every Vietnamese glyph.
VIETNAMESE_FONT_FAMILIES = ("DejaVu Sans", "Noto Sans")
TOP_WARNINGS = 20


class PdfTypesettingUnavailable(RuntimeError):
    """WeasyPrint or the system libraries it needs (Pango) are missing on this machine."""


@dataclass(frozen=True)
class TrendChart:
    """A unit's totals over the last periods as an SVG line (xu hướng), with its scale."""

    width: int
    height: int
    points: str
    dots: Sequence[tuple[float, float, str, str]]  # x, y, period, total as written


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown,
    )
    env.filters.update(
        number=labels.number_vi,
        signed=labels.signed_vi,
        grade=labels.grade_vi,
        grade_en=labels.grade_en,
        period=labels.period_vi,
        moment=labels.datetime_vi,
        when=labels.date_vi,
        kind=labels.warning_kind_vi,
        count=labels.count_vi,
    )
    return env


def trend_chart(trend: Sequence[tuple[str, Decimal]], *, width: int = 460, height: int = 120) -> TrendChart | None:
    if len(trend) < 2:
        return None
    pad_x, pad_y = 24, 18
    lowest = min(min(t for _, t in trend), Decimal(50))
    highest = Decimal(100)
    span = float(highest - lowest) or 1.0
    step = (width - 2 * pad_x) / (len(trend) - 1)
    dots = []
    for i, (period, total) in enumerate(trend):
        x = pad_x + i * step
        y = pad_y + (float(highest - total) / span) * (height - 2 * pad_y)
        dots.append((round(x, 1), round(y, 1), period, labels.number_vi(total)))
    return TrendChart(width, height, " ".join(f"{x},{y}" for x, y, _, _ in dots), dots)


def _warning_counts(warnings: Sequence[WarningItem]) -> list[tuple[str, int]]:
    counts = Counter(w.kind for w in warnings)
    ordered = [k for k in labels.WARNING_KIND_ORDER if counts[k]]
    ordered += sorted(k for k in counts if k not in labels.WARNING_KIND_ORDER)
    return [(k, counts[k]) for k in ordered]


def _top_warnings(warnings: Sequence[WarningItem], limit: int) -> list[WarningItem]:
    """Overdue first, then due soon (earliest due first), then the rest in the given order."""
    rank = {k: i for i, k in enumerate(labels.WARNING_KIND_ORDER)}
    indexed = list(enumerate(warnings))
    indexed.sort(key=lambda p: (rank.get(p[1].kind, len(rank)), p[1].due_at.timestamp() if p[1].due_at else 0.0, p[0]))
    return [w for _, w in indexed[:limit]]


def _grade_counts(rows: Sequence[RankingRow]) -> list[tuple[str, int]]:
    counts = Counter(r.grade for r in rows)
    return [(g, counts[g]) for g in labels.GRADE_VI if counts[g]] + [
        (g, n) for g, n in counts.items() if g not in labels.GRADE_VI
    ]


def briefing_html(briefing: Briefing) -> str:
    """The briefing as HTML (what WeasyPrint typesets); also handy to preview in a browser."""
    ranked = sorted((r for r in briefing.ranking if not r.provisional), key=lambda r: (r.rank is None, r.rank or 0))
    provisional = [r for r in briefing.ranking if r.provisional]
    totals = [r.total for r in ranked]
    context: dict[str, Any] = {
        "b": briefing,
        "ranked": ranked,
        "provisional": provisional,
        "average": (sum(totals, Decimal(0)) / len(totals)) if totals else None,
        "grade_counts": _grade_counts(ranked),
        "warning_counts": _warning_counts(briefing.warnings),
        "top_warnings": _top_warnings(briefing.warnings, TOP_WARNINGS),
        "unit_warning_counts": _warning_counts(briefing.unit.warnings) if briefing.unit else [],
        "ratio": labels.ratio_vi,
        "trend": trend_chart(briefing.unit.trend) if briefing.unit else None,
        "unit_names": {r.unit_code: r.unit_name for r in briefing.ranking},
        "unit_warnings": _top_warnings(briefing.unit.warnings, len(briefing.unit.warnings)) if briefing.unit else [],
    }
    return _environment().get_template("briefing.html").render(context)


def is_own_file(url: str) -> bool:
    """A ``file:`` URL of one of the briefing's own files (``templates/``), nothing else."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return False
    return Path(url2pathname(unquote(parts.path))).resolve().is_relative_to(TEMPLATES)


def _own_files_fetcher() -> Any:
    """WeasyPrint's fetcher, refusing every URL but our own files. The briefing's text comes from
    units, integrators and staff and is escaped; should markup ever get through, it still
    cannot read a local file (``<img src="file:///…">``, CSS ``url()``) or call a URL from
    inside the cluster. A refused resource is left out (WeasyPrint logs it), the PDF is made.
    One per PDF: a fetcher keeps request state, and briefings are typeset in parallel threads."""
    return _own_files_fetcher_class()(allowed_protocols=("file",), allow_redirects=False)


@cache
def _own_files_fetcher_class() -> Any:
    from weasyprint.urls import URLFetcher

    class OwnFilesOnly(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            if not is_own_file(url):
                raise ValueError(f"the briefing loads only its own files, not {url[:200]!r}")
            return super().fetch(url, headers)

    return OwnFilesOnly


def briefing_pdf(briefing: Briefing) -> bytes:
    """The briefing typeset as an A4 PDF with page numbers, header and footer."""
    return typeset(briefing_html(briefing))


def typeset(html: str) -> bytes:
    """``html`` (the briefing's markup) as a PDF in the briefing's stylesheet."""
    try:
        from weasyprint import CSS, HTML
    except (ImportError, OSError) as exc:  # OSError: Pango's shared libraries are not installed
        raise PdfTypesettingUnavailable(
            "PDF typesetting needs WeasyPrint and Pango (run ./sqi up or ./sqi test to install them)"
        ) from exc
    fetcher = _own_files_fetcher()
    stylesheet = CSS(filename=str(TEMPLATES / "briefing.css"), url_fetcher=fetcher)
    document = HTML(string=html, base_url=str(TEMPLATES), url_fetcher=fetcher)
    pdf = document.write_pdf(stylesheets=[stylesheet])
    assert pdf is not None
    return pdf
