"""Server-rendered SVG charts: no script, no CDN, readable by screen readers (title + table)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape


def trend_svg(points: Sequence[tuple[str, Decimal | None]], *, title: str, width: int = 640, height: int = 220) -> str:
    """A line of totals (0–100) over periods; gaps where a period has no score."""
    left, right, top, bottom = 36, 12, 14, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(points) - 1)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(v: Decimal) -> float:
        return top + plot_h * (1 - float(v) / 100)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    for v in (0, 50, 65, 80, 90, 100):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(Decimal(v)):.1f}" y2="{y(Decimal(v)):.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y(Decimal(v)) + 4:.1f}" text-anchor="end" class="axis">{v}</text>'
        )
    segment: list[str] = []
    for i, (_, value) in enumerate(points):
        if value is None:
            if len(segment) > 1:
                parts.append(f'<polyline points="{" ".join(segment)}" class="line"/>')
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(value):.1f}")
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" class="dot"><title>{value}</title></circle>')
    if len(segment) > 1:
        parts.append(f'<polyline points="{" ".join(segment)}" class="line"/>')
    for i, (label, _) in enumerate(points):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 22}" text-anchor="middle" class="axis">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
