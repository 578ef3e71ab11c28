"""The HTML page of a ``bias classifier`` report (Gender-Shades-style error table).

Made from the JSON report only (:func:`facegate.bias.classifier` builds it): the intersectional
table and one table per attribute, each with a chart of the error rate per group and its 95%
Wilson interval, the summary (gap, ratio, Max/GeoMean, Fisher's exact test of the worst against
the best group), and the listed errors. A report of facegate's own estimator (``--estimate``)
adds the images with no face per group, the published reference figures (gender) and the
AgeRange tables and chart (age).
"""

from __future__ import annotations

from typing import Any

from facegate.bias.plots import ErrorSeries, Estimate, errorbar_chart, fmt_pct
from facegate.bias.report_page import ci, esc, figure, footer, header, num, pct, small, table

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
    parts = [f"{len(s['groups'])} groups measured"]
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


def _no_face(report: dict[str, Any]) -> str:
    images = report.get("images")
    if not isinstance(images, dict):
        return ""
    per, missed = images.get("per_group", {}), images.get("no_face", {})
    rows = [
        [esc(g), esc(per[g]), esc(missed.get(g, 0)), esc(pct(missed.get(g, 0) / per[g]))]
        for g in sorted(per, key=lambda g: (g == "overall", g))
        if per[g]
    ]
    return (
        "<h2>Images with no face found</h2><p>Not counted as errors of the estimator and not in"
        " the tables above; the server would answer them with no face. Images without a truth"
        f" label: {esc(images.get('no_label', 0))}; faces without an estimate:"
        f" {esc(images.get('no_estimate', 0))}; images the engine refused:"
        f" {esc(images.get('refused', 0))}.</p>"
        + table(["group", "labelled images", "no face", "share"], rows)
    )


def _references(report: dict[str, Any]) -> str:
    refs = report.get("references")
    if not refs:
        return ""
    s = report["intersectional"]["summary"]
    rows = [
        [esc("this report: " + ", ".join(s.get("worst", []))), esc("facegate"),
         esc(pct(s.get("max_error_rate"))), esc("above")]
    ] + [
        [esc(r["group"]), esc(f"{r['study']}: {r['system']}"), esc(pct(r["error_rate"])),
         esc(r["source"])]
        for r in refs
    ]  # fmt: skip
    return (
        "<h2>Beside the published figures</h2><p>The worst group of this report next to the"
        " worst (and best) groups Gender Shades and its follow-up measured on PPB. Not the same"
        " data: PPB's groups are Fitzpatrick skin types of adult parliamentarians in official"
        " portraits; the groups here are the data set's own labels. Compare orders of"
        " magnitude, not decimals.</p>"
        + table(["group", "system", "error rate", "source"], rows, left=2)
    )


def _age_section(tab: dict[str, Any], chart_id: str) -> str:
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
    rows = []
    for g in tab["groups"]:
        rows.append(
            [esc(g["group"]), esc(g["n"]),
             small(g["n"], "faces") if g["too_small"] else esc(pct(g["middle_inside_rate"])),
             esc(ci(g["middle_inside_ci"])), esc(pct(g["overlap_rate"])),
             esc(ci(g["overlap_ci"])), esc(num(g["years_outside_median"], 1)),
             esc(num(g["years_outside_mean"], 1)), esc(num(g["width_median"], 1))]
        )  # fmt: skip
    head = ["group", "faces", "middle in bin", "95% interval", "range overlaps bin",
            "95% interval", "years outside (median)", "years outside (mean)",
            "range width (median)"]  # fmt: skip
    return (
        f"<h2>AgeRange by {esc(name)}</h2>"
        + figure(chart, f"AgeRange against the labelled age bin by {name}.")
        + table(head, rows)
    )


def render_classifier(report: dict[str, Any], rendered_at: str | None) -> str:
    """The page of one ``kind: classifier`` report."""
    out = header(report, "Classifier audit: error rates by group", rendered_at)
    out.append(f"<h2>How to read this</h2><p>{esc(HOW)} Error definition: "
               f"{esc(report.get('error_definition', '-'))}.</p>")  # fmt: skip
    out.append(_section(report["intersectional"], "classifier-intersectional"))
    for i, tab in enumerate(report.get("marginals", [])):
        out.append(_section(tab, f"classifier-marginal-{i}"))
    out.append(_references(report))
    for i, tab in enumerate(report.get("age", [])):
        out.append(_age_section(tab, f"classifier-age-{i}"))
    out.append(_no_face(report))
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
