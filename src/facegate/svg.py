"""The frame every inline SVG chart shares (the audit transparency report's and the bias
reports'): escaping, label shortening, and an accessible ``<svg role="img">`` opening element
labelled by its own ``<title>`` and ``<desc>``.

Contract: ``chart_id`` is used in ``id`` attributes and must be unique in the page; every text
given here is escaped. No scripts, fonts or styles from outside.
"""

from __future__ import annotations

from html import escape

INK = "#1a1a1a"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'


def esc(value: object) -> str:
    """``value`` as text safe inside an element or an attribute."""
    return escape(str(value), quote=True)


def short(label: str, limit: int) -> str:
    """``label`` cut to ``limit`` characters, with an ellipsis where it was cut."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def svg_open(chart_id: str, title: str, desc: str, width: int, height: int) -> str:
    """The opening ``<svg>`` element with its ``<title>`` and ``<desc>`` (close it with
    ``</svg>``)."""
    cid = esc(chart_id)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{cid}-title {cid}-desc" {FONT}>'
        f'<title id="{cid}-title">{esc(title)}</title><desc id="{cid}-desc">{esc(desc)}</desc>'
    )


def svg_empty(chart_id: str, title: str, desc: str, width: int, message: str) -> str:
    """A chart with nothing to draw: its frame and ``message``."""
    return (
        svg_open(chart_id, title, desc, width, 40)
        + f'<text x="8" y="25" fill="{INK}">{esc(message)}</text></svg>'
    )
