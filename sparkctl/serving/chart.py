"""One self-contained HTML file charting output tokens/s against concurrency, a line per workload.

Inline SVG and no script, so it opens anywhere (a browser, a CI artifact viewer) with no network.
Concurrency runs on a log-2 axis, as sweeps double it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 50, 50
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _nice_top(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(step * power) for step in (1, 2, 5, 10) if step * power >= value)


def render(title: str, levels: Sequence[dict[str, Any]]) -> str:
    """The chart of `levels` (sweep results: workload, max_concurrency, output_throughput)."""
    series: dict[str, list[tuple[int, float]]] = {}
    for level in levels:
        series.setdefault(str(level["workload"]), []).append((int(level["max_concurrency"]),
                                                               float(level["output_throughput"])))
    xs = sorted({c for points in series.values() for c, _ in points}) or [1]
    low, high = math.log2(xs[0]), math.log2(xs[-1])
    top = _nice_top(max((t for points in series.values() for _, t in points), default=1.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(c: int) -> float:
        return LEFT + (plot_w / 2 if high == low else (math.log2(c) - low) / (high - low) * plot_w)

    def y(t: float) -> float:
        return TOP + plot_h - t / top * plot_h

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
              f'font-family="sans-serif" font-size="12">'),
             f'<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{html.escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#333"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#333"/>']
    for i in range(6):
        value = top * i / 5
        parts.append(f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{LEFT + plot_w}" y2="{y(value):.1f}" '
                     f'stroke="#ddd"/><text x="{LEFT - 8}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
    for c in xs:
        parts.append(f'<text x="{x(c):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{c}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">concurrency '
                 '(requests in flight)</text>')
    parts.append(f'<text transform="translate(18 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 'output tokens/s</text>')
    for index, (name, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points.sort()
        path = " ".join(f"{x(c):.1f},{y(t):.1f}" for c, t in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for c, t in points:
            parts.append(f'<circle cx="{x(c):.1f}" cy="{y(t):.1f}" r="3.5" fill="{colour}">'
                         f'<title>{html.escape(name)}: {t:.1f} tok/s at concurrency {c}</title></circle>')
        ly = TOP + 10 + index * 20
        parts.append(f'<rect x="{LEFT + plot_w + 20}" y="{ly - 9}" width="14" height="4" fill="{colour}"/>'
                     f'<text x="{LEFT + plot_w + 40}" y="{ly - 3}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title) +
            "</title></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
