"""Server-rendered SVG charts with pygal (shipped with the project: no script from a CDN).

The SVG carries a title for screen readers and the page shows the same figures in a table.
pygal's interactive script is not loaded (``js=[]``): the chart is a plain picture.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from html import escape

import pygal
from pygal.style import Style

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1a1a1a",
    foreground_strong="#1a1a1a",
    foreground_subtle="#d0d0d0",
    colors=("#0b5394",),
    font_family="system-ui, 'Segoe UI', Roboto, Arial, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)


def trend_svg(points: Sequence[tuple[str, Decimal | None]], *, title: str, width: int = 640, height: int = 240) -> str:
    """A line of totals (0–100) over periods; a gap where a period has no score."""
    chart = pygal.Line(
        width=width,
        height=height,
        style=STYLE,
        show_legend=False,
        range=(0, 100),
        y_labels=[0, 50, 65, 80, 90, 100],
        js=[],
        disable_xml_declaration=True,
        explicit_size=False,
        allow_interruptions=True,
        print_values=False,
        dots_size=3,
    )
    chart.x_labels = [label for label, _ in points]
    chart.add(title, [None if v is None else float(v) for _, v in points])
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    # An image with a name for assistive technology; the figures are in the table beside it.
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1).replace(
        'class="pygal-chart"', 'class="pygal-chart chart"', 1
    )
