"""Small inline SVG charts for the HTML transparency report: no scripts, fonts or styles from
outside, every text escaped, readable in print (dark bars, value labels, no colour coding).

Each function returns one ``<svg role="img">`` element labelled by its own ``<title>`` and
``<desc>`` (``aria-labelledby``); each bar carries a ``<title>`` with its label and value. The
page puts a table with the same numbers next to every chart, which is the accessible
alternative; the chart is a picture of that table.

Contract: labels and titles may be any text (they are escaped); values are non-negative numbers;
``chart_id`` is used in ``id`` attributes and must be unique in the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from facegate.svg import INK, short, svg_empty, svg_open
from facegate.svg import esc as _e

WIDTH = 720
BAR = "#1f4e79"
GRID = "#c8c8c8"
MAX_LABEL = 60


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _short(label: str, limit: int = MAX_LABEL) -> str:
    return short(label, limit)


def _open(chart_id: str, title: str, desc: str, height: int) -> str:
    return svg_open(chart_id, title, desc, WIDTH, height)


def _empty(chart_id: str, title: str, desc: str) -> str:
    return svg_empty(chart_id, title, desc, WIDTH, "No records in this period.")


def hbar_chart(chart_id: str, title: str, desc: str, rows: Sequence[tuple[str, float]]) -> str:
    """Horizontal bars, one per ``(label, value)`` in the given order, scaled to the largest
    value, with the value written after each bar. Labels longer than 60 characters are cut
    (with an ellipsis) in the picture; the bar's tooltip and the table keep them whole."""
    if not rows:
        return _empty(chart_id, title, desc)
    row_h, top = 22, 6
    label_w = min(400, max(60, round(6.6 * max(len(_short(label)) for label, _ in rows)) + 8))
    bar_w = WIDTH - label_w - 70
    peak = max(value for _, value in rows) or 1
    parts = [_open(chart_id, title, desc, top * 2 + row_h * len(rows))]
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = max(0.0, bar_w * value / peak)
        parts.append(
            f"<g><title>{_e(label)}: {_e(_num(value))}</title>"
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" fill="{INK}">'
            f"{_e(_short(label))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{BAR}"/>'
            f'<text x="{label_w + w + 5:.1f}" y="{y + 15}" fill="{INK}">{_e(_num(value))}</text>'
            "</g>"
        )
    parts.append(
        f'<line x1="{label_w}" y1="{top}" x2="{label_w}" y2="{top + row_h * len(rows)}" '
        f'stroke="{INK}"/></svg>'
    )
    return "".join(parts)


def column_chart(
    chart_id: str, title: str, desc: str, rows: Sequence[tuple[str, float]], x_label: str
) -> str:
    """Vertical bars for ordered bins (a histogram: similarity bands, candidate counts), bin
    labels under the bars, values above, ``x_label`` under the axis."""
    if not rows or not any(value for _, value in rows):
        return _empty(chart_id, title, desc)
    height, top, bottom, left = 220, 20, 46, 10
    plot_h = height - top - bottom
    slot = (WIDTH - 2 * left) / len(rows)
    peak = max(value for _, value in rows) or 1
    parts = [_open(chart_id, title, desc, height)]
    base = top + plot_h
    for i, (label, value) in enumerate(rows):
        h = plot_h * value / peak
        x = left + i * slot
        mid = x + slot / 2
        parts.append(
            f"<g><title>{_e(label)}: {_e(_num(value))}</title>"
            f'<rect x="{x + slot * 0.15:.1f}" y="{base - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{BAR}"/>'
            f'<text x="{mid:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" fill="{INK}">'
            f"{_e(_num(value))}</text>"
            f'<text x="{mid:.1f}" y="{base + 16}" text-anchor="middle" fill="{INK}">'
            f"{_e(_short(label, 16))}</text></g>"
        )
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{WIDTH - left}" y2="{base}" stroke="{INK}"/>'
        f'<text x="{WIDTH / 2:.0f}" y="{height - 6}" text-anchor="middle" fill="{INK}">'
        f"{_e(x_label)}</text></svg>"
    )
    return "".join(parts)


def day_chart(chart_id: str, title: str, desc: str, days: Sequence[tuple[str, float]]) -> str:
    """Bars per day in date order (days as ``YYYY-MM-DD``), a grid line at the peak value, the
    first and last day written under the axis. Bars are at least one unit wide, so a year fits."""
    if not days or not any(value for _, value in days):
        return _empty(chart_id, title, desc)
    height, top, bottom, left, right = 200, 18, 30, 48, 10
    plot_h, plot_w = height - top - bottom, WIDTH - left - right
    slot = plot_w / len(days)
    peak = max(value for _, value in days) or 1
    base = top + plot_h
    parts = [
        _open(chart_id, title, desc, height),
        f'<line x1="{left}" y1="{top}" x2="{WIDTH - right}" y2="{top}" stroke="{GRID}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" fill="{INK}">'
        f"{_e(_num(peak))}</text>",
        f'<text x="{left - 6}" y="{base + 4}" text-anchor="end" fill="{INK}">0</text>',
    ]
    for i, (day, value) in enumerate(days):
        if not value:
            continue
        h = plot_h * value / peak
        parts.append(
            f"<g><title>{_e(day)}: {_e(_num(value))}</title>"
            f'<rect x="{left + i * slot:.2f}" y="{base - h:.1f}" '
            f'width="{max(1.0, slot * 0.8):.2f}" height="{h:.1f}" fill="{BAR}"/></g>'
        )
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{WIDTH - right}" y2="{base}" stroke="{INK}"/>'
        f'<text x="{left}" y="{height - 8}" fill="{INK}">{_e(days[0][0])}</text>'
        f'<text x="{WIDTH - right}" y="{height - 8}" text-anchor="end" fill="{INK}">'
        f"{_e(days[-1][0])}</text></svg>"
    )
    return "".join(parts)
