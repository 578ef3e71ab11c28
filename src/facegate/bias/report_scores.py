"""The HTML page of a ``score-comparison`` report (``facegate bias normalisation --html``;
template ``scores.html``).

Raw distance and normalised score side by side: per-group FMR at equal FNMR as a chart (log
scale, 95% Wilson intervals) and a table, the summary (worst group, Max/GeoMean, LFW accuracy)
and the lineup counts. Made from the JSON report alone; this module gives the template numbers
and text only (see :mod:`facegate.bias.report_page`).
"""

from __future__ import annotations

from typing import Any

from facegate.bias import report_page as page
from facegate.bias.normalisation import lineup_rows
from facegate.bias.plots import ErrorSeries, Estimate, errorbar_chart, fmt_pct


def _estimate(rate: dict[str, Any]) -> Estimate | None:
    if rate.get("rate") is None or not rate.get("ci") or rate["rate"] <= 0:
        return None  # a zero cannot be drawn on a log scale; the table shows it
    return Estimate(rate["rate"], max(rate["ci"][0], 1e-6), rate["ci"][1])


def short_label(group: str) -> str:
    """A chart label short enough for 14 groups side by side: the initials of each word of each
    part (``East Asian x female`` -> ``EA-F``); the table beside the chart has the full names."""
    parts = [p.strip() for p in group.split(" x ")]
    return "-".join("".join(w[0].upper() for w in p.replace("_", " ").split()) for p in parts)


def _cell(rate: dict[str, Any]) -> str:
    return f"{page.pct(rate['rate'])} ({page.ci(rate['ci'])}; {rate['errors']}/{rate['total']})"


SUMMARY = (
    "threshold (score units)",
    "LFW FNMR",
    "worst group",
    "FMR Max/GeoMean",
    "LFW 10-fold accuracy",
)


def _summary_cell(scorer: dict[str, Any], label: str) -> str:
    equal = scorer["equal_fnmr"]
    if label == "threshold (score units)":
        return page.num(equal["threshold_score"], 4)
    if label == "LFW FNMR":
        return page.pct(equal["lfw_fnmr"])
    if label == "worst group":
        worst = equal["worst_group"]
        return f"{worst} {page.pct(equal['groups'][worst]['rate'])}"
    if label == "FMR Max/GeoMean":
        return page.num(equal["max_geomean"], 2)
    return page.pct(scorer["lfw_accuracy"]["mean"])


def render_score_comparison(report: dict[str, Any], rendered_at: str | None) -> str:
    """The page (see the module docstring)."""
    scorers: dict[str, Any] = report["scorers"]
    names = list(scorers)
    first = scorers[names[0]]
    groups = list(first["equal_fnmr"]["groups"])
    series = [
        ErrorSeries(n, [_estimate(scorers[n]["equal_fnmr"]["groups"][g]) for g in groups])
        for n in names
    ]
    svg = errorbar_chart(
        "fmr-by-scorer",
        "FMR per group: raw and normalised",
        "Impostor false match rate of each group at equal FNMR, log scale, 95% intervals.",
        [short_label(g) for g in groups],
        series,
        x_label="group",
        y_label="FMR (log scale)",
        log_y=True,
        y_format=fmt_pct,
    )
    versions = ", ".join(s["similarity_version"] for s in scorers.values())
    return page.render(
        "scores.html",
        report | {"similarity_version": versions},
        "Raw distance and normalised score, side by side",
        rendered_at,
        names=names,
        data=report.get("data") or {},
        chart=page.chart(svg),
        legend="; ".join(f"{short_label(g)}: {g}" for g in groups),
        rows=[[g, *(_cell(scorers[n]["equal_fnmr"]["groups"][g]) for n in names)] for g in groups],
        summary=[[label, *(_summary_cell(scorers[n], label) for n in names)] for label in SUMMARY],
        lineup=first["lineup"],
        lineup_rows=lineup_rows(report, page.pct, page.pct),
    )
