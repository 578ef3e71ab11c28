"""Small inline SVG plots for the HTML bias reports: pure functions returning one ``<svg>``.

Style as in the transparency report's charts: no scripts, fonts or styles from outside, every
text escaped, each chart labelled by its own ``<title>`` and ``<desc>`` (``role="img"``,
``aria-labelledby``); the page puts a table with the same numbers next to every chart.

Series are told apart without colour: the Okabe-Ito colour-blind-safe palette (Okabe & Ito,
"Color Universal Design", 2008) is combined with distinct dash patterns, markers and (bars) fill
patterns, so a greyscale print stays readable. The palette has 8 colours, dashes and markers 6
each, so up to 24 series have distinct styles.

Log axes: a logarithmic axis cannot show 0, and error rates are often exactly 0. Zeros (and a
confidence interval's lower end at 0) are drawn on a separate "0" line just outside the log
range, labelled ``0``, never dropped. ``None``/NaN values are gaps.

Contract: labels and titles may be any text (escaped); ``chart_id`` is used in ``id``
attributes and must be unique in the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

from facegate.svg import INK, short, svg_empty, svg_open
from facegate.svg import esc as _e

WIDTH = 820
HEIGHT = 380
LEFT, RIGHT, TOP, BOTTOM = 72, 250, 16, 56
GRID = "#d0d0d0"
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "12 4", "3 6")
MARKERS = ("circle", "square", "triangle", "diamond", "plus", "cross")
ZERO_GAP = 30  # pixels between the "0" line and the bottom of a log range
MAX_LABEL = 34

Format = Callable[[float], str]


def _short(label: str, limit: int = MAX_LABEL) -> str:
    return short(label, limit)


def fmt_g(value: float) -> str:
    """Compact number: ``0.5``, ``1e-05``."""
    return f"{value:g}"


def fmt_pct(value: float) -> str:
    """A rate (0-1) as a percentage, 3 significant digits: ``0.1%``, ``1.16%``, ``55.2%``."""
    pct = 100.0 * value
    if pct == 0:
        return "0%"
    return f"{pct:.3g}%" if abs(pct) >= 1e-3 else f"{pct:.1e}%"


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class Mark:
    """A vertical reference line at ``value`` on the x axis, labelled (e.g. a threshold)."""

    value: float
    label: str


@dataclass(frozen=True)
class Series:
    """A named line: ``(x, y)`` points in order, ``None`` y (or x) for a gap.

    ``marked``: points drawn larger and labelled (e.g. operating thresholds on a DET curve).
    """

    label: str
    points: Sequence[tuple[float | None, float | None]]
    marked: Sequence[tuple[float, float, str]] = field(default_factory=tuple)


@dataclass(frozen=True)
class Estimate:
    """A value with a confidence interval ``[low, high]``."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class ErrorSeries:
    """One group's estimates, one per category (``None``: not measured)."""

    label: str
    values: Sequence[Estimate | None]


class _Axis:
    """Maps data values to pixels between ``start`` and ``end`` (``end`` may be < ``start``)."""

    def __init__(self, values: Sequence[float], start: float, end: float, *, log: bool) -> None:
        self.log = log
        self.start, self.end = start, end
        finite = [v for v in values if math.isfinite(v)]
        if log:
            positive = [v for v in finite if v > 0]
            self.has_zero = any(v <= 0 for v in finite)
            if positive:
                lo = 10.0 ** math.floor(math.log10(min(positive)))
                hi = 10.0 ** math.ceil(math.log10(max(positive)))
            else:
                lo, hi = 1e-3, 1.0
            if hi <= lo:
                hi = lo * 10.0
            self.lo, self.hi = lo, hi
            step = ZERO_GAP if end > start else -ZERO_GAP
            self.zero_px = start
            self.range_start = start + step if self.has_zero else start
        else:
            self.has_zero = False
            lo = min(finite, default=0.0)
            hi = max(finite, default=1.0)
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            self.lo, self.hi = lo, hi
            self.zero_px = start
            self.range_start = start

    def px(self, value: float) -> float:
        if self.log:
            if value <= 0:
                return self.zero_px
            frac = (math.log10(value) - math.log10(self.lo)) / (
                math.log10(self.hi) - math.log10(self.lo)
            )
        else:
            frac = (value - self.lo) / (self.hi - self.lo)
        return self.range_start + frac * (self.end - self.range_start)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = round(math.log10(self.lo)), round(math.log10(self.hi))
            every = max(1, math.ceil((last - first) / 8))
            out = [10.0**k for k in range(first, last + 1, every)]
            return ([0.0] if self.has_zero else []) + out
        span = self.hi - self.lo
        raw = span / 5
        mag = 10.0 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw)
        start = math.ceil(self.lo / step - 1e-9) * step
        count = math.floor((self.hi - start) / step + 1e-9) + 1
        return [round(start + i * step, 12) for i in range(count)]


def _open(chart_id: str, title: str, desc: str, height: int = HEIGHT) -> str:
    return svg_open(chart_id, title, desc, WIDTH, height)


def _empty(chart_id: str, title: str, desc: str) -> str:
    return svg_empty(chart_id, title, desc, WIDTH, "No data to plot.")


def _marker(
    kind: str, x: float, y: float, colour: str, *, size: float = 3.5, hollow: bool = False
) -> str:
    fill = "#ffffff" if hollow else colour
    paint = f'fill="{fill}" stroke="{colour}" stroke-width="1.3"'
    s = size
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s:.1f}" {paint}/>'
    if kind == "square":
        side = f'width="{2 * s:.1f}" height="{2 * s:.1f}"'
        return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" {side} {paint}/>'
    if kind == "triangle":
        pts = (
            f"{x:.1f},{y - s * 1.2:.1f} {x - s * 1.1:.1f},{y + s:.1f} {x + s * 1.1:.1f},{y + s:.1f}"
        )
        return f'<polygon points="{pts}" {paint}/>'
    if kind == "diamond":
        pts = (
            f"{x:.1f},{y - s * 1.3:.1f} {x + s:.1f},{y:.1f} "
            f"{x:.1f},{y + s * 1.3:.1f} {x - s:.1f},{y:.1f}"
        )
        return f'<polygon points="{pts}" {paint}/>'
    if kind == "plus":
        return (
            f'<path d="M{x - s:.1f},{y:.1f}H{x + s:.1f}M{x:.1f},{y - s:.1f}V{y + s:.1f}" '
            f'stroke="{colour}" stroke-width="2" fill="none"/>'
        )
    return (
        f'<path d="M{x - s:.1f},{y - s:.1f}L{x + s:.1f},{y + s:.1f}M{x - s:.1f},{y + s:.1f}'
        f'L{x + s:.1f},{y - s:.1f}" stroke="{colour}" stroke-width="2" fill="none"/>'
    )


def _style(i: int) -> tuple[str, str, str]:
    return PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)], MARKERS[i % len(MARKERS)]


def _dash(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


def _legend(labels: Sequence[str], *, pattern_id: str | None = None) -> str:
    x0 = WIDTH - RIGHT + 14
    parts = []
    for i, label in enumerate(labels):
        colour, dash, marker = _style(i)
        y = TOP + 8 + 18 * i
        if pattern_id is not None:
            fill = f"url(#{pattern_id}-p{i % len(PALETTE)})"
            sample = (
                f'<rect x="{x0}" y="{y - 6}" width="24" height="12" fill="{fill}" '
                f'stroke="{colour}"/>'
            )
        else:
            sample = (
                f'<line x1="{x0}" y1="{y}" x2="{x0 + 24}" y2="{y}" stroke="{colour}" '
                f'stroke-width="2"{_dash(dash)}/>' + _marker(marker, x0 + 12, y, colour)
            )
        parts.append(
            f"<g><title>{_e(label)}</title>{sample}"
            f'<text x="{x0 + 30}" y="{y + 4}" font-size="11" fill="{INK}">'
            f"{_e(_short(label))}</text></g>"
        )
    return "".join(parts)


def _frame(
    xa: _Axis,
    ya: _Axis,
    x_label: str,
    y_label: str,
    x_format: Format,
    y_format: Format,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    *,
    height: int = HEIGHT,
    rotate_ticks: bool = False,
) -> str:
    """Grid, ticks, frame and axis labels. ``height`` above :data:`HEIGHT` leaves room under
    the plot (same size) for ``rotate_ticks``: x tick labels slanted, for many long ones."""
    left, right = LEFT, WIDTH - RIGHT
    top, bottom = TOP, HEIGHT - BOTTOM
    parts = []
    for t in ya.ticks():
        y = ya.px(t)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{_e(y_format(t))}</text>"
        )
    ticks = x_ticks if x_ticks is not None else [(t, x_format(t)) for t in xa.ticks()]
    for t, text in ticks:
        x = xa.px(t)
        label = (
            f'<text transform="translate({x + 4:.1f} {bottom + 12}) rotate(-35)" '
            f'text-anchor="end" fill="{INK}">{_e(text)}</text>'
            if rotate_ticks
            else f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="{INK}">'
            f"{_e(text)}</text>"
        )
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID}"/>' + label
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
        f'fill="none" stroke="{INK}"/>'
        f'<text x="{(left + right) / 2:.1f}" y="{height - 12}" text-anchor="middle" '
        f'fill="{INK}">{_e(x_label)}</text>'
        f'<text transform="translate(16 {(top + bottom) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{INK}">{_e(y_label)}</text>'
    )
    return "".join(parts)


def _vmarks(xa: _Axis, marks: Sequence[Mark]) -> str:
    parts = []
    for k, mark in enumerate(marks):
        if not math.isfinite(mark.value):
            continue
        x = xa.px(mark.value)
        if not LEFT - 0.5 <= x <= WIDTH - RIGHT + 0.5:
            continue
        parts.append(
            f"<g><title>{_e(mark.label)}</title>"
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="{INK}" '
            f'stroke-width="1.2" stroke-dasharray="1 2"/>'
            f'<text x="{x + 3:.1f}" y="{TOP + 12 + 13 * (k % 3)}" fill="{INK}">'
            f"{_e(_short(mark.label, 20))}</text></g>"
        )
    return "".join(parts)


def line_chart(
    chart_id: str,
    title: str,
    desc: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    log_y: bool = False,
    marks: Sequence[Mark] = (),
    x_format: Format = fmt_g,
    y_format: Format = fmt_g,
    y_range: tuple[float, float] | None = None,
) -> str:
    """Lines with markers, one per series (legend on the right), optional log axes and
    vertical marks. A series' gaps (``None``) break its line. Returns a "No data" picture when
    no series has a point."""
    pts = [[(x, y) for x, y in s.points if _finite(x) and _finite(y)] for s in series]
    xs = [float(x) for p in pts for x, _ in p if x is not None]
    ys = [float(y) for p in pts for _, y in p if y is not None]
    if not xs:
        return _empty(chart_id, title, desc)
    xs += [m.value for m in marks if math.isfinite(m.value)] if not log_x else []
    xs += [x for s in series for x, _, _ in s.marked]
    ys += [y for s in series for _, y, _ in s.marked]
    if y_range is not None:
        ys += list(y_range)
    xa = _Axis(xs, LEFT, WIDTH - RIGHT, log=log_x)
    ya = _Axis(ys, HEIGHT - BOTTOM, TOP, log=log_y)
    parts = [_open(chart_id, title, desc), _frame(xa, ya, x_label, y_label, x_format, y_format)]
    parts.append(_vmarks(xa, marks))
    for i, s in enumerate(series):
        colour, dash, marker = _style(i)
        segments: list[list[tuple[float, float]]] = [[]]
        for x, y in s.points:
            if _finite(x) and _finite(y):
                segments[-1].append((xa.px(x), ya.px(y)))
            elif segments[-1]:
                segments.append([])
        body = []
        for seg in segments:
            if len(seg) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in seg)
                body.append(
                    f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{_dash(dash)}/>'
                )
            every = max(1, len(seg) // 12)  # markers sparse enough to read, on long curves
            body += [_marker(marker, px, py, colour) for px, py in seg[::every]]
        for x, y, label in s.marked:
            px, py = xa.px(x), ya.px(y)
            body.append(
                f"<g><title>{_e(s.label)}: {_e(label)}</title>"
                + _marker(marker, px, py, colour, size=6, hollow=True)
                + f'<text x="{px + 7:.1f}" y="{py - 6:.1f}" fill="{INK}">{_e(label)}</text></g>'
            )
        parts.append(f"<g><title>{_e(s.label)}</title>{''.join(body)}</g>")
    parts.append(_legend([s.label for s in series]))
    parts.append("</svg>")
    return "".join(parts)


def errorbar_chart(
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[ErrorSeries],
    *,
    x_label: str,
    y_label: str,
    log_y: bool = False,
    y_format: Format = fmt_g,
) -> str:
    """Per category (e.g. a threshold) one point per series with its interval as an error bar,
    series side by side. ``None`` estimates are left out (say so in the table)."""
    values = [
        v for s in series for e in s.values if e is not None for v in (e.value, e.low, e.high)
    ]
    values = [v for v in values if math.isfinite(v)]
    if not categories or not values:
        return _empty(chart_id, title, desc)
    n = len(categories)
    xa = _Axis([-0.5, n - 0.5], LEFT, WIDTH - RIGHT, log=False)
    ya = _Axis(values, HEIGHT - BOTTOM, TOP, log=log_y)
    ticks = [(float(i), _short(c)) for i, c in enumerate(categories)]
    # labels wider than their slot (about 6.5 px a character) are slanted, below the same plot
    longest = max(len(text) for _, text in ticks)
    rotate = longest * 6.5 > (WIDTH - RIGHT - LEFT) / n
    height = HEIGHT + (round(longest * 6.5 * 0.6) if rotate else 0)
    parts = [_open(chart_id, title, desc, height)]
    parts.append(
        _frame(xa, ya, x_label, y_label, fmt_g, y_format, x_ticks=ticks, height=height,
               rotate_ticks=rotate)
    )  # fmt: skip
    slot = (xa.px(1.0) - xa.px(0.0)) * 0.7
    k = max(1, len(series))
    for i, s in enumerate(series):
        colour, _, marker = _style(i)
        body = []
        for c, est in enumerate(s.values[:n]):
            if est is None or not math.isfinite(est.value):
                continue
            x = xa.px(float(c)) - slot / 2 + slot * (i + 0.5) / k
            y, y_lo, y_hi = ya.px(est.value), ya.px(est.low), ya.px(est.high)
            body.append(
                f"<g><title>{_e(s.label)} at {_e(categories[c])}: {_e(y_format(est.value))} "
                f"[{_e(y_format(est.low))}, {_e(y_format(est.high))}]</title>"
                f'<path d="M{x:.1f},{y_lo:.1f}V{y_hi:.1f}M{x - 4:.1f},{y_lo:.1f}H{x + 4:.1f}'
                f'M{x - 4:.1f},{y_hi:.1f}H{x + 4:.1f}" stroke="{colour}" stroke-width="1.5" '
                f'fill="none"/>' + _marker(marker, x, y, colour, size=4) + "</g>"
            )
        parts.append(f"<g>{''.join(body)}</g>")
    parts.append(_legend([s.label for s in series]))
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    chart_id: str,
    title: str,
    desc: str,
    edges: Sequence[float],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    x_label: str,
    y_label: str,
    marks: Sequence[Mark] = (),
    y_format: Format = fmt_g,
) -> str:
    """Overlaid step outlines (lightly filled), one per series over the same bins ``edges``
    (``len(edges) - 1`` values each), with vertical marks (e.g. thresholds)."""
    usable = [i for i, (_, v) in enumerate(series) if len(v) == len(edges) - 1 and any(v)]
    if len(edges) < 2 or not usable:
        return _empty(chart_id, title, desc)
    xa = _Axis([edges[0], edges[-1]], LEFT, WIDTH - RIGHT, log=False)
    ya = _Axis([0.0, max(max(series[i][1]) for i in usable)], HEIGHT - BOTTOM, TOP, log=False)
    parts = [_open(chart_id, title, desc), _frame(xa, ya, x_label, y_label, fmt_g, y_format)]
    base = ya.px(0.0)
    for i, (label, counts) in enumerate(series):
        if i not in usable:
            continue
        colour, dash, _ = _style(i)
        d = [f"M{xa.px(edges[0]):.1f},{base:.1f}"]
        for k, value in enumerate(counts):
            y = ya.px(value)
            d.append(f"V{y:.1f}H{xa.px(edges[k + 1]):.1f}")
        d.append(f"V{base:.1f}")
        parts.append(
            f'<g><title>{_e(label)}</title><path d="{"".join(d)}" fill="{colour}" '
            f'fill-opacity="0.12" stroke="{colour}" stroke-width="2"{_dash(dash)}/></g>'
        )
    parts.append(_vmarks(xa, marks))
    parts.append(_legend([label for label, _ in series]))
    parts.append("</svg>")
    return "".join(parts)


def _patterns(pid: str) -> str:
    """Fill patterns per series: solid, hatches, dots, cross-hatch..., in the palette colours."""
    shapes = (
        "",
        '<path d="M0,8 L8,0" stroke="#fff" stroke-width="2"/>',
        '<circle cx="4" cy="4" r="1.6" fill="#fff"/>',
        '<path d="M0,4 H8 M4,0 V8" stroke="#fff" stroke-width="1.5"/>',
        '<path d="M0,0 L8,8" stroke="#fff" stroke-width="2"/>',
        '<path d="M0,2 H8 M0,6 H8" stroke="#fff" stroke-width="1.2"/>',
        '<path d="M2,0 V8 M6,0 V8" stroke="#fff" stroke-width="1.2"/>',
        '<path d="M0,8 L8,0 M0,0 L8,8" stroke="#fff" stroke-width="1.2"/>',
    )
    out = ["<defs>"]
    for i, colour in enumerate(PALETTE):
        out.append(
            f'<pattern id="{pid}-p{i}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{colour}"/>{shapes[i % len(shapes)]}</pattern>'
        )
    out.append("</defs>")
    return "".join(out)


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    x_label: str,
    y_label: str,
    y_format: Format = fmt_g,
) -> str:
    """Grouped vertical bars: per category one bar per series (patterned fills), the value
    written above each bar; ``None`` values are written as "n/a" with no bar."""
    values = [float(v) for _, vs in series for v in vs if _finite(v)]
    if not categories or not series or not values:
        return _empty(chart_id, title, desc)
    pid = _e(chart_id)
    n = len(categories)
    xa = _Axis([-0.5, n - 0.5], LEFT, WIDTH - RIGHT, log=False)
    ya = _Axis([0.0, 1.1 * max(values) or 1.0], HEIGHT - BOTTOM, TOP, log=False)  # label room
    ticks = [(float(i), c) for i, c in enumerate(categories)]
    parts = [_open(chart_id, title, desc), _patterns(pid)]
    parts.append(_frame(xa, ya, x_label, y_label, fmt_g, y_format, x_ticks=ticks))
    slot = (xa.px(1.0) - xa.px(0.0)) * 0.8
    width = slot / max(1, len(series))
    base = ya.px(0.0)
    for i, (label, vs) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        for c, v in enumerate(list(vs)[:n]):
            x = xa.px(float(c)) - slot / 2 + width * i
            if not _finite(v):
                parts.append(
                    f'<text x="{x + width / 2:.1f}" y="{base - 4:.1f}" text-anchor="middle" '
                    f'font-size="9" fill="{INK}">n/a</text>'
                )
                continue
            y = ya.px(v)
            parts.append(
                f"<g><title>{_e(label)} at {_e(categories[c])}: {_e(y_format(v))}</title>"
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width - 2, 1):.1f}" '
                f'height="{base - y:.1f}" fill="url(#{pid}-p{i % len(PALETTE)})" '
                f'stroke="{colour}"/>'
                f'<text x="{x + width / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                f'font-size="9" fill="{INK}">{_e(y_format(v))}</text></g>'
            )
    parts.append(_legend([label for label, _ in series], pattern_id=pid))
    parts.append("</svg>")
    return "".join(parts)
