"""The HTML page of a ``sweep`` report (template ``sweep.html``): each group's error rates across
a range of Similarity thresholds, as in the UK NPL study of live facial recognition (2023), and
the lowest threshold at which no two groups differ significantly. This module gives the
template numbers and text only (see :mod:`facegate.bias.report_page`).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from facegate.bias import report_page as page
from facegate.bias.plots import Mark, Series, fmt_pct, line_chart


def _chart(report: dict[str, Any], kind: str) -> Markup:
    points = report["points"]
    pairs_key = "nonmated_pairs" if kind == "fmr" else "mated_pairs"
    names: list[str] = []
    for p in points:
        names += [g["group"] for g in p["groups"] if g["group"] not in names]
    series = []
    for name in names:
        pts: list[tuple[float | None, float | None]] = []
        label = name
        for p in points:
            g = next((x for x in p["groups"] if x["group"] == name), None)
            if g is None or not g[pairs_key]:
                label = f"{name} (no pairs)"
                continue
            if not g[f"{kind}_measurable"]:
                label = page.group_label(name, g[pairs_key], False)
                continue
            pts.append((p["similarity_pct"], g[kind]))
        series.append(Series(label, pts))
    balance = (report.get("balance") or {}).get(kind) or {}
    marks = []
    if balance.get("lowest_balanced_similarity_pct") is not None:
        marks.append(Mark(balance["lowest_balanced_similarity_pct"], "lowest balanced"))
    if balance.get("first_imbalanced_similarity_pct") is not None:
        marks.append(Mark(balance["first_imbalanced_similarity_pct"], "imbalanced"))
    k = kind.upper()
    return page.chart(
        line_chart(
            f"sweep-{kind}",
            f"{k} per group against Similarity",
            f"{k} (log scale) per group across the swept Similarity thresholds; the dotted "
            "lines mark the lowest balanced threshold and the first imbalanced one.",
            series,
            x_label="Similarity threshold",
            y_label=f"{k} (log scale)",
            log_y=True,
            marks=marks,
            y_format=fmt_pct,
        )
    )


def _balance(report: dict[str, Any], kind: str) -> dict[str, Any]:
    """The balance test of one rate: its verdict (``text`` none when nothing was tested) and
    the test at every threshold."""
    b = (report.get("balance") or {}).get(kind)
    k = kind.upper()
    if b is None:
        return {"kind": k, "text": None}
    low = b["lowest_balanced_similarity_pct"]
    bad = b["first_imbalanced_similarity_pct"]
    if low is None:
        verdict = "even the highest swept Similarity shows a significant imbalance"
    else:
        verdict = (
            f"lowest balanced Similarity {low:g} "
            f"({page.unit(report)} {b['lowest_balanced_distance']:.4f})"
        )
    verdict += (
        "; every swept threshold is balanced"
        if bad is None
        else f"; first imbalance at Similarity {bad:g}"
    )
    if b["comparisons"] == 0:
        verdict += " (fewer than two measurable groups: nothing was compared)"
    text = (
        f"{k}: {verdict}. {b['comparisons']} group comparisons, each significant when "
        f"p < {b['level']:.3g}. Groups tested: {', '.join(b['groups']) or 'none'}."
    )
    if b["too_small"]:
        text += f" Too small to test (< {report['min_pairs']} pairs): {', '.join(b['too_small'])}."
    rows = [
        [
            f"{c['similarity_pct']:g}",
            f"{c['distance']:.4f}",
            "yes" if c["balanced"] else "NO",
            f"{c['min_p']:.3g}",
            " vs ".join(c["worst_pair"]) if c["worst_pair"] else "-",
        ]
        for c in b["checks"]
    ]
    return {"kind": k, "text": text, "rows": rows}


def _rates(report: dict[str, Any], kind: str) -> dict[str, Any]:
    """One rate per group at every swept threshold: the chart and the table."""
    points = report["points"]
    pairs_key = "nonmated_pairs" if kind == "fmr" else "mated_pairs"
    head = ["Similarity", page.unit(report)] + [
        f"{g['group']} ({g[pairs_key]} pairs)" for g in (points[0]["groups"] if points else [])
    ]
    rows = []
    for p in points:
        row: list[Any] = [f"{p['similarity_pct']:g}", f"{p['distance']:.4f}"]
        for g in p["groups"]:
            n = g[pairs_key]
            if n and not g[f"{kind}_measurable"]:
                row.append(page.small(n))
            else:
                row.append(f"{page.pct(g[kind])} [{page.ci(g[f'{kind}_ci'])}]")
        rows.append(row)
    return {"kind": kind.upper(), "svg": _chart(report, kind), "head": head, "rows": rows}


def render_sweep(report: dict[str, Any], rendered_at: str | None) -> str:
    """The page of one ``kind: sweep`` report."""
    has_fnmr = any(g["mated_pairs"] for p in report["points"] for g in p["groups"])
    kinds = ("fmr", "fnmr") if has_fnmr else ("fmr",)
    pairs = report.get("pairs", {})
    return page.render(
        "sweep.html",
        report,
        "Threshold sweep: error rates by group",
        rendered_at,
        test=report["test"],
        pairs=", ".join(f"{k.replace('_', ' ')} {v}" for k, v in pairs.items()),
        balance=[_balance(report, kind) for kind in kinds],
        rates=[_rates(report, kind) for kind in kinds],
    )
