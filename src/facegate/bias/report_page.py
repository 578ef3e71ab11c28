"""What every bias report page shares: the Jinja2 templates of ``facegate/bias/templates/``
(package data), the number formats, and the cells a table may hold.

The page frame (``frame.html``, which extends the frame of every facegate page,
``facegate/templates/page.html``) holds the style, the title and the header table (command,
model, data set, dates); ``macros.html`` the table and figure every page uses. Each report
kind has its own template, given data (never HTML) by its module: ``pairs.html``
(:mod:`~facegate.bias.report_pairs`), ``lineup.html`` (:mod:`~facegate.bias.report_lineup`),
``sweep.html`` (:mod:`~facegate.bias.report_sweep`), ``classifier.html``
(:mod:`~facegate.bias.report_classifier`), ``scores.html`` (:mod:`~facegate.bias.report_scores`).
Every text from a report is escaped by the autoescaping environment of
:mod:`facegate.templating`. The only markup passed in is the inline SVG of
:mod:`facegate.bias.plots` (:func:`chart`), built from numbers and escaping its own text.

A table cell is plain text (escaped), :func:`small` (a group too small to measure) or
:func:`code` (a path or command in ``<code>``).
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from facegate.templating import environment


def pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * float(value):.3f}%"


def ci(interval: Any) -> str:
    if not interval:
        return "-"
    return f"{100 * float(interval[0]):.3f}% \u2013 {100 * float(interval[1]):.3f}%"


def num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def small(n: int, unit: str = "pairs") -> dict[str, Any]:
    """A cell shown as "too small: ``n`` ``unit``" (``macros.html``'s ``cell``)."""
    return {"small": n, "unit": unit}


def code(text: object) -> dict[str, Any]:
    """A cell shown in ``<code>`` (an image path)."""
    return {"code": text}


def chart(svg: str) -> Markup:
    """An SVG of :mod:`facegate.bias.plots` as markup: the plots escape every text they draw."""
    return Markup(svg)  # noqa: S704


def unit(report: dict[str, Any]) -> str:
    """What a report's thresholds and pair values are in: ``score`` (the cohort-normalised
    score, which can be below 0 for near-identical images) or ``distance`` (raw descriptor
    distance; also every report made before ``"score"`` was recorded)."""
    return "score" if report.get("score") == "normalised" else "distance"


def render(
    template: str, report: dict[str, Any], title: str, rendered_at: str | None, **data: Any
) -> str:
    """The page ``template`` (which extends ``frame.html``) of ``report`` under ``title``;
    ``rendered_at`` is shown in the header beside the report's own ``created`` date."""
    page = environment("facegate.bias").get_template(template)
    return page.render(
        report=report, title=title, rendered_at=rendered_at, unit=unit(report), **data
    )


def threshold_rows(thresholds: list[dict[str, Any]]) -> list[list[str]]:
    """The table of a report's operating thresholds: Similarity and the distance (or score)."""
    return [[f"{t['similarity_pct']:g}", f"{t['distance']:.4f}"] for t in thresholds]


def group_label(name: str, n: int, measurable: bool) -> str:
    """A group's name in a chart's legend, marked when it is too small to plot."""
    return name if measurable else f"{name} (too small: {n} pairs)"
