"""A bar chart drawn on the server as inline SVG: no script, no library, and it scales
to any phone's width (viewBox). Each bar carries a <title> (its exact value, shown on a
long press) and the chart a text alternative for screen readers.

Colours are SVG presentation attributes rather than styles, so the dashboard's
Content-Security-Policy (no inline styles but its own sheet) does not block them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 8, 8, 22, 34


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    colour: str
    values: Sequence[int | None]  # None: no value that day (drawn as nothing)


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Callable[[int], str],
    title: str,
    chart_id: str = "chart",
) -> str:
    """Grouped bars, one group per label; values may be negative (drawn below zero)."""
    values = [v for s in series for v in s.values if v is not None]
    top = max([0, *values])
    bottom = min([0, *values])
    span = (top - bottom) or 1
    plot_h = HEIGHT - TOP - BOTTOM
    zero_y = TOP + plot_h * top / span
    group_w = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    bar_w = max(2.0, group_w * 0.8 / max(1, len(series)))
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" '
        'stroke="#c9d2cd" stroke-width="1"/>',
        f'<text x="{LEFT}" y="14" font-size="11" fill="#5b6661">{escape(fmt(top))}</text>',
    ]
    for i, label in enumerate(labels):
        x0 = LEFT + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else None
            if value is None:
                continue
            h = plot_h * abs(value) / span
            y = zero_y - h if value >= 0 else zero_y
            parts.append(
                f'<rect class="bar" data-series="{escape(s.name)}" data-label="{escape(label)}" '
                f'data-value="{value}" x="{x0 + j * bar_w:.1f}" y="{y:.1f}" '
                f'width="{bar_w - 1:.1f}" height="{max(h, 0.5):.1f}" fill="{escape(s.colour)}">'
                f"<title>{escape(label)} {escape(s.name)} {escape(fmt(value))}</title></rect>"
            )
        parts.append(
            f'<text x="{LEFT + (i + 0.5) * group_w:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'font-size="11" text-anchor="middle" fill="#5b6661">{escape(label)}</text>'
        )
    legend_x = LEFT
    for s in series:
        parts.append(
            f'<rect x="{legend_x}" y="{HEIGHT - 10}" width="10" height="10" '
            f'fill="{escape(s.colour)}"/>'
            f'<text x="{legend_x + 14}" y="{HEIGHT - 1}" font-size="11" fill="#1d2421">'
            f"{escape(s.name)}</text>"
        )
        legend_x += 20 + 12 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)
