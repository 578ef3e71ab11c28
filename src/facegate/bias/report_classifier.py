"""The HTML page of a ``bias classifier`` report (Gender-Shades-style error table; template
``classifier.html``).

Made from the JSON report only (:func:`facegate.bias.classifier` builds it): the intersectional
table and one table per attribute, each with a chart of the error rate per group and its 95%
Wilson interval, the summary (gap, ratio, Max/GeoMean, Fisher's exact test of the worst against
the best group), and the listed errors. A report of facegate's own estimator (``--estimate``)
adds the images with no face per group, the published reference figures (gender) and the
AgeRange tables and chart (age). This module gives the template numbers and text only (see
:mod:`facegate.bias.report_page`).
"""

from __future__ import annotations

from typing import Any

from facegate.bias import report_page as page
from facegate.bias.plots import ErrorSeries, Estimate, errorbar_chart, fmt_pct


def _confusion(row: dict[str, Any]) -> str:
    wrong = [c for c in row.get("confusion", []) if c["truth"] != c["predicted"]]
    return "; ".join(f"{c['truth']} \u2192 {c['predicted']}: {c['count']}" for c in wrong)


def _rows(tab: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for row in [*tab["groups"], tab["unlabelled"], tab["overall"]]:
        if row["n"] == 0 and row is tab["unlabelled"]:
            continue
        rate = page.small(row["n"], "rows") if row["too_small"] else page.pct(row["error_rate"])
        interval = None if row["ci_low"] is None else (row["ci_low"], row["ci_high"])
        rows.append(
            [row["group"], row["n"], row["errors"], rate, page.ci(interval), _confusion(row)]
        )
    return rows


def _summary(tab: dict[str, Any]) -> str:
    s = tab["summary"]
    parts = [f"{len(s['groups'])} groups measured"]
    if s.get("too_small"):
        parts.append(f"too small: {', '.join(s['too_small'])}")
    if s.get("max_error_rate") is not None:
        parts.append(
            f"worst {', '.join(s['worst'])} {page.pct(s['max_error_rate'])}, best "
            f"{', '.join(s['best'])} {page.pct(s['min_error_rate'])}, gap "
            f"{page.pct(s['difference'])}"
        )
    if s.get("ratio") is not None:
        parts.append(f"ratio {s['ratio']:.2f}")
    if s.get("max_geomean") is not None:
        parts.append(f"Max/GeoMean {s['max_geomean']:.2f}")
    if s.get("fisher"):
        f = s["fisher"]
        parts.append(f"Fisher's exact test {f['worst']} vs {f['best']}: p = {f['p_value']:.3g}")
    return "; ".join(parts) + "."


def _section(tab: dict[str, Any], chart_id: str) -> dict[str, Any]:
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
    return {"name": name, "svg": page.chart(chart), "rows": _rows(tab), "summary": _summary(tab)}


def _no_face(report: dict[str, Any]) -> dict[str, Any] | None:
    images = report.get("images")
    if not isinstance(images, dict):
        return None
    per, missed = images.get("per_group", {}), images.get("no_face", {})
    rows = [
        [g, per[g], missed.get(g, 0), page.pct(missed.get(g, 0) / per[g])]
        for g in sorted(per, key=lambda g: (g == "overall", g))
        if per[g]
    ]
    return {"images": images, "rows": rows}


def _references(report: dict[str, Any]) -> list[list[Any]] | None:
    refs = report.get("references")
    if not refs:
        return None
    s = report["intersectional"]["summary"]
    mine = ["this report: " + ", ".join(s.get("worst", [])), "facegate",
            page.pct(s.get("max_error_rate")), "above"]  # fmt: skip
    return [mine] + [
        [r["group"], f"{r['study']}: {r['system']}", page.pct(r["error_rate"]), r["source"]]
        for r in refs
    ]


def _age_section(tab: dict[str, Any], chart_id: str) -> dict[str, Any]:
    name = " x ".join(tab["attributes"])
    groups = [g for g in tab["groups"] if g["group"] != "overall"]
    measured = [g for g in groups if not g["too_small"] and g["n"]]
    chart = errorbar_chart(
        chart_id,
        f"AgeRange against the labelled bin by {name}",
        f"Share of faces whose AgeRange middle is in the labelled bin, and whose AgeRange "
        f"overlaps it, with 95% intervals, by {name}.",
        [g["group"] for g in measured],
        [
            ErrorSeries(
                "middle in bin",
                [Estimate(g["middle_inside_rate"], *g["middle_inside_ci"]) for g in measured],
            ),
            ErrorSeries(
                "range overlaps bin",
                [Estimate(g["overlap_rate"], *g["overlap_ci"]) for g in measured],
            ),
        ],
        x_label=name,
        y_label="share of faces",
        y_format=fmt_pct,
    )
    rows = [
        [g["group"], g["n"],
         page.small(g["n"], "faces") if g["too_small"] else page.pct(g["middle_inside_rate"]),
         page.ci(g["middle_inside_ci"]), page.pct(g["overlap_rate"]), page.ci(g["overlap_ci"]),
         page.num(g["years_outside_median"], 1), page.num(g["years_outside_mean"], 1),
         page.num(g["width_median"], 1)]
        for g in tab["groups"]
    ]  # fmt: skip
    return {"name": name, "svg": page.chart(chart), "rows": rows}


def render_classifier(report: dict[str, Any], rendered_at: str | None) -> str:
    """The page of one ``kind: classifier`` report."""
    marginals, ages = report.get("marginals", []), report.get("age", [])
    return page.render(
        "classifier.html",
        report,
        "Classifier audit: error rates by group",
        rendered_at,
        sections=[_section(report["intersectional"], "classifier-intersectional")]
        + [_section(tab, f"classifier-marginal-{i}") for i, tab in enumerate(marginals)],
        references=_references(report),
        ages=[_age_section(tab, f"classifier-age-{i}") for i, tab in enumerate(ages)],
        no_face=_no_face(report),
        listed=[
            [e["line"], e.get("image", ""), e["group"], e["truth"], e["predicted"]]
            for e in report.get("listed_errors", [])
        ],
    )
