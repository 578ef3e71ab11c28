"""The HTML page of a ``score-comparison`` report (``facegate bias normalisation --html``).

Raw distance and normalised score side by side: per-group FMR at equal FNMR as a chart (log
scale, 95% Wilson intervals) and a table, the summary (worst group, Max/GeoMean, LFW accuracy)
and the lineup counts. Made from the JSON report alone.
"""

from __future__ import annotations

from typing import Any

from facegate.bias import report_page as page
from facegate.bias.normalisation import lineup_rows
from facegate.bias.plots import ErrorSeries, Estimate, errorbar_chart, fmt_pct
from facegate.bias.report_page import esc as _e


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
        return f"{_e(worst)} {page.pct(equal['groups'][worst]['rate'])}"
    if label == "FMR Max/GeoMean":
        return page.num(equal["max_geomean"], 2)
    return page.pct(scorer["lfw_accuracy"]["mean"])


def render_score_comparison(report: dict[str, Any], rendered_at: str | None) -> str:
    """The page (see the module docstring)."""
    scorers: dict[str, Any] = report["scorers"]
    names = list(scorers)
    first = scorers[names[0]]
    groups = list(first["equal_fnmr"]["groups"])
    out = page.header(
        report
        | {"similarity_version": ", ".join(s["similarity_version"] for s in scorers.values())},
        "Raw distance and normalised score, side by side",
        rendered_at,
    )
    fnmr = report["fnmr_target"]
    data = report.get("data") or {}
    out.append(
        f"<h2>False match rate per {_e(report['grouping'])} group at equal FNMR</h2>"
        f"<p>Each scorer's threshold is where {fnmr:.0%} of the mated pairs among "
        f"{_e(data.get('mated', 'LFW View 2'))}'s {report['lfw_pairs']} pairs fail; the FMR is "
        f"over every within-group pair of {report['held_out_faces']} faces of "
        f"{_e(data.get('impostors', 'FairFace (held-out half)'))}, disjoint from the "
        "cohort.</p>"
    )
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
    rows = [[_e(g), *(_cell(scorers[n]["equal_fnmr"]["groups"][g]) for n in names)] for g in groups]
    legend = "; ".join(f"{short_label(g)}: {g}" for g in groups)
    caption = f"FMR per group ({legend})."
    out.append(page.figure(svg, caption, page.table(["group", *names], rows)))
    summary = [[_e(label), *(_summary_cell(scorers[n], label) for n in names)] for label in SUMMARY]
    out.append("<h2>Summary</h2>" + page.table(["", *names], summary))
    lineup = first["lineup"]
    out.append(
        f"<h2>Lineup: {lineup['probes']} probes against {lineup['gallery']} gallery faces</h2>"
        "<p>Nobody among the probes is in the gallery: every candidate is false. Each cell: the"
        " probes with at least one candidate at the threshold (that scorer's own calibration),"
        " and the FNMR on the mated pairs the threshold costs.</p>"
    )
    lrows = [[_e(c) for c in row] for row in lineup_rows(report, page.pct, page.pct)]
    out.append(page.table(["threshold", *names], lrows))
    out.append(page.footer())
    return "\n".join(out)
