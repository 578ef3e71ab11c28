"""Self-contained HTML pages for the bias reports, made from the JSON report dict only.

:func:`render_html` dispatches on the report's ``"kind"`` (``verification``, ``impostors``,
``lineup``, ``sweep``, ``classifier``, ``score-comparison``), so a page can be re-made later
from a saved JSON report (``facegate bias html REPORT.json --out OUT.html``). Each kind is a
Jinja2 template in ``facegate/bias/templates/`` (package data) extending the bias frame
``frame.html``, fed by its module (:mod:`~facegate.bias.report_pairs`,
:mod:`~facegate.bias.report_lineup`, :mod:`~facegate.bias.report_sweep`,
:mod:`~facegate.bias.report_classifier`, :mod:`~facegate.bias.report_scores`). The page has no
scripts and loads nothing: styles are inline, plots are inline SVG (:mod:`facegate.bias.plots`),
image paths are text. It prints on paper. Every text from the report is escaped (autoescaping,
:mod:`facegate.templating`). Each section says how to read it, and each plot sits next to a
table of the same numbers. Groups too small to measure are shown as "too small: n pairs",
never left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from facegate.bias.report_classifier import render_classifier
from facegate.bias.report_lineup import render_lineup
from facegate.bias.report_pairs import render_pairs
from facegate.bias.report_scores import render_score_comparison
from facegate.bias.report_sweep import render_sweep


def _verification(report: dict[str, Any], rendered_at: str | None) -> str:
    return render_pairs(report, ("fnmr", "fmr"), "Verification accuracy by group", rendered_at)


def _impostors(report: dict[str, Any], rendered_at: str | None) -> str:
    return render_pairs(report, ("fmr",), "False matches by group (impostor pairs)", rendered_at)


Renderer = Callable[[dict[str, Any], str | None], str]
RENDERERS: dict[str, Renderer] = {
    "verification": _verification,
    "impostors": _impostors,
    "lineup": render_lineup,
    "sweep": render_sweep,
    "classifier": render_classifier,
    "score-comparison": render_score_comparison,
}


def render_html(report: dict[str, Any], *, rendered_at: str | None = None) -> str:
    """One self-contained HTML page for a JSON bias report (dispatch on ``report["kind"]``).

    ``rendered_at``: shown in the header next to the report's own ``created`` date. Raises
    :class:`ValueError` for a dict without a known ``kind`` (e.g. a report written before
    ``kind`` existed) and :class:`KeyError` for one missing a field its kind needs.
    """
    kind = report.get("kind")
    renderer = RENDERERS.get(kind) if isinstance(kind, str) else None
    if renderer is None:
        raise ValueError(
            f"not a bias report: kind {kind!r}, expected one of {', '.join(RENDERERS)}"
        )
    return renderer(report, rendered_at)
