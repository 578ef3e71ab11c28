"""The HTML page of a ``bias classifier`` report (Gender-Shades-style error table).

Made from the JSON report only (:func:`facegate.bias.classifier` builds it): the intersectional
table and one table per attribute, each with a chart of the error rate per group and its 95%
Wilson interval, the summary (gap, ratio, Max/GeoMean, Fisher's exact test of the worst against
the best group), and the listed errors.
"""

from __future__ import annotations

from typing import Any

from facegate.bias.plots import ErrorSeries, Estimate, errorbar_chart, fmt_pct
from facegate.bias.report_page import ci, esc, figure, footer, header, pct, small, table

HOW = (
    "A row's error is a prediction that differs from its true label. Each group's error rate "
    "comes with a 95% Wilson score interval (the range of rates compatible with these counts); "
    "groups with fewer rows than the minimum are shown as too small and left out of the "
    "summaries. Max/GeoMean (NIST FRVT Part 8) divides the highest group rate by the geometric "
    "mean of the non-zero group rates (1 means no disparity). Fisher's exact test compares the "
    "worst group with the best: a small p-value means the difference is unlikely to be chance. "
    "Gender Shades (Buolamwini & Gebru, 2018) reported such tables for commercial gender "
    "classifiers: up to 34.7% error for darker-skinned women, at most 0.8% for lighter-skinned "
    "men."
)


def _confusion(row: dict[str, Any]) -> str:
    wrong = [c for c in row.get("confusion", []) if c["truth"] != c["predicted"]]
    return esc("; ".join(f"{c['truth']} \u2192 {c['predicted']}: {c['count']}" for c in wrong))


def _rows(tab: dict[str, Any]) -> list[list[str]]:
    rows = []
    for row in [*tab["groups"], tab["unlabelled"], tab["overall"]]:
        if row["n"] == 0 and row is tab["unlabelled"]:
            continue
        rate = small(row["n"], "rows") if row["too_small"] else esc(pct(row["error_rate"]))
        interval = None if row["ci_low"] is None else (row["ci_low"], row["ci_high"])
        rows.append(
            [esc(row["group"]), esc(row["n"]), esc(row["errors"]), rate, esc(ci(interval)),
             _confusion(row)]
        )  # fmt: skip
    return rows


def _summary(tab: dict[str, Any]) -> str:
    s = tab["summary"]
    parts = [f"{s['groups']} groups measured"]
    if s.get("too_small"):
        parts.append(f"too small: {', '.join(s['too_small'])}")
    if s.get("max_error_rate") is not None:
        parts.append(
            f"worst {', '.join(s['worst'])} {pct(s['max_error_rate'])}, best "
            f"{', '.join(s['best'])} {pct(s['min_error_rate'])}, gap {pct(s['difference'])}"
        )
    if s.get("ratio") is not None:
        parts.append(f"ratio {s['ratio']:.2f}")
    if s.get("max_geomean") is not None:
        parts.append(f"Max/GeoMean {s['max_geomean']:.2f}")
    if s.get("fisher"):
        f = s["fisher"]
        parts.append(f"Fisher's exact test {f['worst']} vs {f['best']}: p = {f['p_value']:.3g}")
    return "<p>" + esc("; ".join(parts)) + ".</p>"


def _section(tab: dict[str, Any], chart_id: str) -> str:
    name = " x ".join(tab["attributes"])
    measured = [g for g in tab["groups"] if not g["too_small"] and g["ci_low"] is not None]
    chart = errorbar_chart(
        chart_id,
        f"Error rate by {name}",
        f"Error rate with 95% interval for each group by {name}.",
        [g["group"] for g in measured],
        [
            ErrorSeries(
                "error rate",
                [Estimate(g["error_rate"], g["ci_low"], g["ci_high"]) for g in measured],
            )
        ],
        x_label=name,
        y_label="error rate",
        y_format=fmt_pct,
    )
    head = ["group", "rows", "errors", "error rate", "95% interval", "errors by kind"]
    return (
        f"<h2>By {esc(name)}</h2>"
        + figure(chart, f"Error rate per group by {name} (groups too small are not drawn).")
        + table(head, _rows(tab))
        + _summary(tab)
    )


def render_classifier(report: dict[str, Any], rendered_at: str | None) -> str:
    """The page of one ``kind: classifier`` report."""
    out = header(report, "Classifier audit: error rates by group", rendered_at)
    out.append(f"<h2>How to read this</h2><p>{esc(HOW)} Error definition: "
               f"{esc(report.get('error_definition', '-'))}.</p>")  # fmt: skip
    out.append(_section(report["intersectional"], "classifier-intersectional"))
    for i, tab in enumerate(report.get("marginals", [])):
        out.append(_section(tab, f"classifier-marginal-{i}"))
    listed = report.get("listed_errors", [])
    if listed:
        rows = [
            [esc(e["line"]), esc(e.get("image", "")), esc(e["group"]), esc(e["truth"]),
             esc(e["predicted"])]
            for e in listed
        ]  # fmt: skip
        out.append(
            "<h2>Listed errors</h2>" + table(["line", "image", "group", "truth", "predicted"], rows)
        )
    out.append(footer())
    return "\n".join(out)
