"""Charts drawn on the server as SVG: pure functions from numbers to markup.

No script and no inline style: colours come from the stylesheet's classes (`svg.chart .bar`),
so the chart follows the light and dark themes. Every chart has a `<title>` and a `<desc>`, and
the page shows the same numbers in a table for those who prefer one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 560
HEIGHT = 220
# Room for the y axis's tick labels on the left and the x axis's labels below.
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 44


@dataclass(frozen=True)
class Point:
    label: str  # on the x axis, e.g. "Dec 5"
    value: float


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round ticks from 0 to at least `maximum`, in steps of 1, 2, 2.5 or 5 times a power of 10."""
    if count < 1:
        raise ValueError("at least one tick")
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def tick_label(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def bar_chart(
    points: Sequence[Point],
    *,
    title: str,
    description: str,
    y_label: str,
    x_label: str,
    chart_id: str,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """One bar per point, a y axis with round ticks, every few x labels so they never overlap."""
    ticks = nice_ticks(max((p.value for p in points), default=0.0))
    top = ticks[-1]
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    bar_w = max(1.0, slot * 0.7)
    # About one label per 48 px: a month of days labels every few days.
    label_every = max(1, math.ceil(len(points) * 48 / plot_w)) if points else 1

    def y_of(value: float) -> float:
        return TOP + plot_h - (value / top) * plot_h

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        'preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(tick_label(tick))}</text>"
        )
    for index, point in enumerate(points):
        x = LEFT + index * slot + (slot - bar_w) / 2
        y = y_of(point.value)
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{TOP + plot_h - y:.1f}"><title>{escape(point.label)}: '
            f"{escape(tick_label(point.value))}</title></rect>"
        )
        if index % label_every == 0:
            parts.append(
                f'<text class="x-label" x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 16}" '
                f'text-anchor="middle">{escape(point.label)}</text>'
            )
    parts.append(
        f'<text class="axis-label" x="{LEFT + plot_w / 2:.1f}" y="{height - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="axis-label" x="12" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    parts.append("</svg>")
    # Every text in it went through escape() above; the rest is numbers and our own markup.
    return Markup("".join(parts))  # noqa: S704
