"""Lag over time as a small inline SVG chart, rendered on the server (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from consumers.lag_history import GroupSample

__all__ = ["COLOURS", "lag_series", "nice_ceiling", "render_lag_chart"]

# One stroke per group, distinguishable in greyscale too (dashes differ).
COLOURS = (("#1f5fa8", ""), ("#b4420c", "6 3"), ("#2e7d32", "2 3"), ("#6a1b9a", "8 3 2 3"))
_W, _H = 640, 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 28


def lag_series(samples: Sequence[GroupSample]) -> list[tuple[float, int]]:
    """(time, records behind summed over the group's partitions) per sample, oldest first."""
    return [(s.at, sum(row.lag for row in s.rows)) for s in samples]


def nice_ceiling(value: float) -> int:
    """The smallest 1, 2 or 5 times 10^k at or above ``value`` (at least 1): the y axis top."""
    top = 1
    while top < value:
        scale = 10 ** (len(str(top)) - 1)
        top = {1: 2, 2: 5}.get(top // scale, 10) * scale
    return top


def render_lag_chart(
    series: Mapping[str, Sequence[tuple[float, int]]], *, now: float, span_s: float = 3600.0
) -> str:
    """An SVG of each group's lag over the ``span_s`` seconds up to ``now``: a titled image
    (``role="img"``) with axes, one polyline per group, and a text description."""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    start = now - span_s
    shown = {g: [(t, v) for t, v in pts if start <= t <= now] for g, pts in series.items()}
    peak = max((v for pts in shown.values() for _, v in pts), default=0)
    top = nice_ceiling(peak)
    minutes = round(span_s / 60)
    desc = "; ".join(
        f"{g}: {pts[-1][1]:,} now, at most {max(v for _, v in pts):,}"
        if pts
        else f"{g}: no samples"
        for g, pts in shown.items()
    )
    out = [
        f'<svg class="lag-chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        'role="img" aria-labelledby="lag-chart-title lag-chart-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="lag-chart-title">Records behind per consumer group, last {minutes} '
        "minutes</title>",
        f'<desc id="lag-chart-desc">{escape(desc or "No lag samples yet.")}</desc>',
    ]
    for frac in (0.0, 0.5, 1.0):  # grid lines with their values
        y = _TOP + plot_h * (1 - frac)
        out.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" '
            'stroke="#c8ccd2" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#333">{round(top * frac):,}</text>'
        )
    for frac, label in ((0.0, f"-{minutes} min"), (0.5, f"-{minutes // 2} min"), (1.0, "now")):
        x = _LEFT + plot_w * frac
        anchor = {0.0: "start", 0.5: "middle", 1.0: "end"}[frac]
        out.append(
            f'<text x="{x:.1f}" y="{_H - 8}" text-anchor="{anchor}" font-size="12" '
            f'fill="#333">{label}</text>'
        )
    for i, (group, pts) in enumerate(shown.items()):
        if not pts:
            continue
        colour, dash = COLOURS[i % len(COLOURS)]
        coords = " ".join(
            f"{_LEFT + plot_w * (t - start) / span_s:.1f},{_TOP + plot_h * (1 - v / top):.1f}"
            for t, v in pts
        )
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<polyline data-group="{escape(group)}" points="{coords}" fill="none" '
            f'stroke="{colour}" stroke-width="2"{dashes}/>'
        )
    if not any(shown.values()):
        out.append(
            f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_h / 2:.1f}" '
            'text-anchor="middle" font-size="14" fill="#333">No samples yet</text>'
        )
    out.append("</svg>")
    return "".join(out)
