"""The transparency report as one self-contained, printable, accessible HTML page.

The page is the Jinja2 template ``facegate/audit/templates/report.html`` (package data; an
autoescaping environment of :mod:`facegate.templating`). No scripts, no external style sheets,
fonts or images: the page carries its own CSS and inline SVG charts (``audit/charts.py``, passed
to the template as markup), and a Content-Security-Policy that forbids scripts outright. Every
text that comes from records (organisation ids, policy ids, actions, error codes, the title, the
verification summary) is escaped by the template. Every chart is a ``<figure>`` holding one
``<svg>`` and the ``<table>`` with the same numbers (the per-day chart's table is in the
appendix, linked from the figure); tables have captions and header cells with ``scope``.

The page says what it contains, what it never contains, and which reporting formats it follows.
This module gives the template its data and the text helpers that need Python.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from facegate.audit.charts import column_chart, day_chart, hbar_chart
from facegate.audit.report_files import write_text_atomic
from facegate.audit.report_model import Table, TransparencyReport, tables
from facegate.templating import environment

_HEADERS = {
    "policy_id": "policy",
    "with_authorization": "warrant or court order",
    "with_case_ref": "with a case reference",
    "median_ms": "median (ms)",
    "p90_ms": "90th percentile (ms)",
}
_X_LABELS = {
    "search_candidate_counts": "candidates found by the search",
    "search_top_similarity": "similarity of the best candidate (%)",
}


def _header(column: str) -> str:
    return _HEADERS.get(column, column.replace("_", " "))


def _numeric(table: Table) -> list[bool]:
    """Per column: every row holds a number there (right-aligned, ``class="n"``)."""
    return [
        bool(table.rows) and all(isinstance(r[i], int | float) for r in table.rows)
        for i in range(len(table.columns))
    ]


def _chart(table: Table) -> Markup:
    """The table's inline SVG chart (built and escaped by ``audit/charts.py``)."""
    pairs = [(str(r[0]), float(r[1] or 0)) for r in table.rows if isinstance(r[1], int | float)]
    total = sum(v for _, v in pairs)
    desc = f"{table.title}: {len(pairs)} rows, {total:,.0f} in total. "
    desc += "The table below gives each value."
    if table.chart == "bands":
        x_label = _X_LABELS.get(table.name, table.columns[0])
        return Markup(column_chart(table.name, table.title, desc, pairs, x_label))  # noqa: S704
    if table.chart == "days":
        desc = desc.replace("the table below", "the table in the appendix")
        return Markup(day_chart(table.name, table.title, desc, pairs))  # noqa: S704
    return Markup(hbar_chart(table.name, table.title, desc, pairs))  # noqa: S704


def _shown(value: object) -> str:
    """A summary value: integers with thousands separators, none as a dash."""
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min" if minutes else f"{seconds:.0f} s"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if hours < 48 else f"{hours / 24:.1f} days"


_HELPERS = {f.__name__[1:]: f for f in (_chart, _numeric, _header, _shown, _duration)}
"""What the template calls: chart(table) (inline SVG markup), numeric(table), header(column),
shown(value), duration(seconds)."""


def render_html(report: TransparencyReport) -> str:
    """The whole page as a string (UTF-8 when written)."""
    template = environment("facegate.audit").get_template("report.html")
    by_name = {t.name: t for t in tables(report)}
    return template.render(report=report, by_name=by_name, **_HELPERS)


def write_html(report: TransparencyReport, path: Path) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8, atomically); returns ``path``."""
    return write_text_atomic(Path(path), render_html(report))
