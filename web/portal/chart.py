"""A server-rendered SVG bar chart of granted and denied decisions per time bucket.

Only geometry is computed here; the template draws it. No script, no inline
styles: colours come from classes in the stylesheet.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.oversight.activity import Bucket

WIDTH = 960
HEIGHT = 300
LEFT = 56
RIGHT = 16
TOP = 16
BOTTOM = 48


@dataclass(frozen=True)
class Bar:
    """One stacked bar: granted on the bottom, denied on top."""

    x: float
    width: float
    granted_y: float
    granted_height: float
    denied_y: float
    denied_height: float
    title: str


@dataclass(frozen=True)
class Tick:
    """An axis tick: position and text."""

    position: float
    text: str


@dataclass(frozen=True)
class Chart:
    """Everything the template needs to draw the chart."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    granted: int
    denied: int
    peak: int


def _nice_ceiling(value: int) -> int:
    """The next 1, 2 or 5 times a power of ten at or above ``value`` (at least 4)."""
    if value <= 4:
        return 4
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def build_chart(buckets: list[Bucket], label_format: str) -> Chart:
    """Lay out stacked bars, a y axis with four intervals and about eight x labels."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    peak = max((b.total for b in buckets), default=0)
    top_value = _nice_ceiling(peak)
    slot = plot_width / max(1, len(buckets))
    gap = min(4.0, slot * 0.2)
    bars: list[Bar] = []
    for i, bucket in enumerate(buckets):
        granted_h = plot_height * bucket.granted / top_value
        denied_h = plot_height * bucket.denied / top_value
        base = TOP + plot_height
        bars.append(
            Bar(
                x=round(LEFT + i * slot + gap / 2, 2),
                width=round(slot - gap, 2),
                granted_y=round(base - granted_h, 2),
                granted_height=round(granted_h, 2),
                denied_y=round(base - granted_h - denied_h, 2),
                denied_height=round(denied_h, 2),
                title=(
                    f"{bucket.start.strftime(label_format)}: {bucket.granted} granted, "
                    f"{bucket.denied} denied"
                ),
            )
        )
    y_ticks = [
        Tick(round(TOP + plot_height - plot_height * k / 4, 2), str(top_value * k // 4))
        for k in range(5)
    ]
    every = max(1, len(buckets) // 8)
    x_ticks = [
        Tick(round(LEFT + i * slot + slot / 2, 2), bucket.start.strftime(label_format))
        for i, bucket in enumerate(buckets)
        if i % every == 0
    ]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        plot_width=plot_width,
        plot_height=plot_height,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        granted=sum(b.granted for b in buckets),
        denied=sum(b.denied for b in buckets),
        peak=peak,
    )
