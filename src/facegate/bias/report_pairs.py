"""The HTML pages of ``verification`` and ``impostors`` reports (template ``pairs.html``).

Per group and threshold: the error rates with 95% Wilson intervals and their summaries, a chart
of each rate per group, DET curves (verification) or FMR against Similarity (impostors), the
distance histograms, failure to detect, and the highest-similarity pairs for review. This
module gives the template numbers and text only (see :mod:`facegate.bias.report_page`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from facegate.bias import report_page as page
from facegate.bias.plots import (
    ErrorSeries,
    Estimate,
    Mark,
    Series,
    errorbar_chart,
    fmt_pct,
    histogram,
    line_chart,
)


def _rate_cells(row: dict[str, Any], kind: str, *, check: bool) -> list[Any]:
    errors_key = "false_matches" if kind == "fmr" else "false_non_matches"
    pairs_key = "nonmated_pairs" if kind == "fmr" else "mated_pairs"
    errors, pairs = row.get(errors_key, 0), row.get(pairs_key, 0)
    counts = f"{errors}/{pairs}"
    interval = page.ci(row.get(f"{kind}_ci"))
    if check and pairs and not row.get(f"{kind}_measurable", True):
        return [counts, page.small(pairs), interval]
    return [counts, page.pct(row.get(kind)), interval]


def _summary(t: dict[str, Any], kinds: Sequence[str]) -> list[str]:
    items = []
    for kind in kinds:
        d = t.get(kind)
        if not d:
            continue
        ci = d.get("max_geomean_ci")
        boot = f" (bootstrap 95% CI {page.num(ci[0])}\u2013{page.num(ci[1])})" if ci else ""
        text = (
            f"{kind.upper()}: max {d['max_group']} {page.pct(d['max'])}, min {d['min_group']} "
            f"{page.pct(d['min'])}, max\u2212min {page.pct(d['difference'])}, ratio "
            f"{page.num(d['ratio'])}, Max/GeoMean {page.num(d['max_geomean'])}{boot}"
        )
        if d.get("zero_groups"):
            text += "; zero-rate groups (left out of the geometric mean): " + ", ".join(
                d["zero_groups"]
            )
        if d.get("too_small"):
            text += f"; too small to measure (< {t.get('min_pairs', '?')} pairs): " + ", ".join(
                d["too_small"]
            )
        items.append(text)
    if len(kinds) == 2:
        items.append(f"FDR (alpha 0.5): {page.num(t.get('fdr'))}")
    return items


def _threshold(t: dict[str, Any], kinds: Sequence[str]) -> dict[str, Any]:
    """One threshold's table (``rows`` none when nothing was scored) and summary."""
    if t.get("overall") is None:
        return {"t": t, "rows": None}
    head = ["group"]
    for kind in kinds:
        k = kind.upper()
        head += [f"{k} errors/pairs", k, f"{k} 95% CI"]
    labelled = [(g["group"], g, True) for g in t["groups"]] + [("overall", t["overall"], False)]
    if t.get("cross_group"):
        labelled.append(("(cross-group, not in summaries)", t["cross_group"], False))
    rows = [
        [label, *(c for kind in kinds for c in _rate_cells(row, kind, check=check))]
        for label, row, check in labelled
    ]
    return {"t": t, "head": head, "rows": rows, "summary": _summary(t, kinds)}


def _errorbars(report: dict[str, Any], kind: str) -> dict[str, Any] | None:
    thresholds = report["thresholds"]
    names: list[str] = []
    for t in thresholds:
        names += [g["group"] for g in t.get("groups", []) if g["group"] not in names]
    if not names:
        return None
    pairs_key = "nonmated_pairs" if kind == "fmr" else "mated_pairs"
    series = []
    rows = []
    for name in names:
        values: list[Estimate | None] = []
        label = name
        for t in thresholds:
            g = next((x for x in t.get("groups", []) if x["group"] == name), None)
            if g is None or g.get(kind) is None or not g.get(f"{kind}_ci"):
                values.append(None)
                continue
            if not g.get(f"{kind}_measurable", True):
                label = page.group_label(name, g[pairs_key], False)
                values.append(None)
                continue
            lo, hi = g[f"{kind}_ci"]
            values.append(Estimate(g[kind], lo, hi))
        series.append(ErrorSeries(label, values))
        rows.append(
            [label]
            + [
                "-" if v is None else f"{page.pct(v.value)} [{page.pct(v.low)}, {page.pct(v.high)}]"
                for v in values
            ]
        )
    cats = [f"Similarity {t['similarity_pct']:g}" for t in thresholds]
    k = kind.upper()
    svg = errorbar_chart(
        f"{kind}-ci",
        f"{k} per group with 95% Wilson intervals",
        f"{k} of each group at each threshold, log scale; too-small groups are listed, unplotted.",
        cats,
        series,
        x_label="threshold",
        y_label=f"{k} (log scale)",
        log_y=True,
        y_format=fmt_pct,
    )
    return {"kind": k, "svg": page.chart(svg), "head": ["group", *cats], "rows": rows}


def _operating_points(report: dict[str, Any], group: str) -> list[tuple[float, float, str]]:
    out = []
    for t in report["thresholds"]:
        rows = t.get("groups", []) if group != "overall" else [t.get("overall") or {}]
        g = next((x for x in rows if group == "overall" or x.get("group") == group), None)
        if g and g.get("fmr") is not None and g.get("fnmr") is not None:
            out.append((float(g["fmr"]), float(g["fnmr"]), f"{t['similarity_pct']:g}"))
    return out


def _sample_idx(values: Sequence[Any], k: int = 8) -> list[int]:
    n = len(values)
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _min_pairs(report: dict[str, Any]) -> int:
    for t in report.get("thresholds", []):
        if "min_pairs" in t:
            return int(t["min_pairs"])
    return 1


def _det(report: dict[str, Any]) -> dict[str, Any] | None:
    det = report.get("det")
    if not det:
        return None
    min_pairs = _min_pairs(report)
    unit = page.unit(report)
    series = []
    rows: list[list[Any]] = []
    for name, c in det["groups"].items():
        ok = c["mated_pairs"] >= min_pairs and c["nonmated_pairs"] >= min_pairs
        if name == "overall":
            ok = c["mated_pairs"] > 0 and c["nonmated_pairs"] > 0
        label = page.group_label(name, min(c["mated_pairs"], c["nonmated_pairs"]), ok)
        pts = list(zip(c["fmr"], c["fnmr"], strict=True)) if ok else []
        series.append(Series(label, pts, _operating_points(report, name) if ok else ()))
        rows.append(
            [label, c["mated_pairs"], c["nonmated_pairs"]]
            + [f"{page.pct(c['fmr'][i])} / {page.pct(c['fnmr'][i])}" for i in _sample_idx(c["fmr"])]
        )
    head = ["group", "mated", "non-mated"] + [
        f"{unit} {det['thresholds'][i]:.3f} (Sim {det['similarity_pct'][i]:g}): FMR / FNMR"
        for i in _sample_idx(det["thresholds"])
    ]
    svg = line_chart(
        "det",
        "DET curves per group",
        f"FNMR against FMR (log scale) as the {unit} threshold moves, one line per group; "
        "hollow markers are the operating thresholds.",
        series,
        x_label="FMR (log scale)",
        y_label="FNMR",
        log_x=True,
        x_format=fmt_pct,
        y_format=fmt_pct,
    )
    return {"svg": page.chart(svg), "head": head, "rows": rows}


def _fmr_curve(report: dict[str, Any]) -> Markup | None:
    """Impostor-only: FMR per group against Similarity (there is no FNMR for a DET)."""
    det = report.get("det")
    if not det:
        return None
    min_pairs = _min_pairs(report)
    series = []
    for name, c in det["groups"].items():
        ok = c["nonmated_pairs"] >= (1 if name == "overall" else min_pairs)
        label = page.group_label(name, c["nonmated_pairs"], ok)
        pts = list(zip(det["similarity_pct"], c["fmr"], strict=True)) if ok else []
        series.append(Series(label, pts))
    marks = [
        Mark(t["similarity_pct"], f"Similarity {t['similarity_pct']:g}")
        for t in report["thresholds"]
    ]
    return page.chart(
        line_chart(
            "fmr-curve",
            "FMR per group against Similarity",
            "FMR (log scale) of each group as the Similarity threshold moves; dotted lines are "
            "the operating thresholds.",
            series,
            x_label="Similarity threshold",
            y_label="FMR (log scale)",
            log_y=True,
            marks=marks,
            y_format=fmt_pct,
        )
    )


def _histograms(report: dict[str, Any], kinds: Sequence[str]) -> list[dict[str, Any]] | None:
    hist = report.get("histograms")
    if not hist:
        return None
    edges = hist["bin_edges"]
    marks = [Mark(t["distance"], f"Sim {t['similarity_pct']:g}") for t in report["thresholds"]]
    u = page.unit(report)
    out = []
    for i, (name, h) in enumerate(hist["groups"].items()):
        series = []
        rows = []
        for side, label in (("mated", "mated (same person)"), ("nonmated", "non-mated")):
            if side == "mated" and "fnmr" not in kinds:
                continue
            counts = h[side]
            below = h.get(f"{side}_below", 0)
            total = sum(counts) + h[f"{side}_above"] + below
            shares = [c / total if total else 0.0 for c in counts]
            series.append((f"{label}, {total} pairs", shares))
            rows.append([label, total, below, h[f"{side}_above"]])
        svg = histogram(
            f"hist-{i}",
            f"{u.capitalize()}s of {name}",
            f"Share of the group's pairs per {u} bin, {name}; dotted lines are thresholds.",
            edges,
            series,
            x_label=u,
            y_label="share of pairs",
            marks=marks,
            y_format=fmt_pct,
        )
        head = ["pairs", "count", "below 0", f"above {edges[-1]:g}"]
        out.append({"name": name, "head": head, "rows": rows, "svg": page.chart(svg)})
    return out


def _detection(doc: dict[str, Any]) -> dict[str, Any]:
    """Failure to detect per group (:mod:`facegate.bias.detection`): a chart and a table."""
    groups = {g: r for g, r in doc["groups"].items() if r["rate"] is not None}
    estimates = [
        Estimate(r["rate"], r["ci"][0], r["ci"][1]) if r["rate"] > 0 else None
        for r in groups.values()
    ]
    svg = errorbar_chart(
        "ftd-ci",
        "Failure to detect per group with 95% Wilson intervals",
        "Share of each group's images where no face was found, log scale.",
        list(groups),
        [ErrorSeries("no face found", estimates)],
        x_label="group",
        y_label="no face found (log scale)",
        log_y=True,
        y_format=fmt_pct,
    )
    rows = [
        [
            g,
            f"{r['no_face']}/{r['images']}",
            page.pct(r["rate"]),
            page.ci(r["ci"]),
            ", ".join(f"{k} {v}" for k, v in r["found_by"].items()) or "-",
        ]
        for g, r in [("overall", doc["overall"]), *groups.items()]
    ]
    ratio = doc.get("worst_best_ratio")
    return {
        "svg": page.chart(svg),
        "rows": rows,
        "ratio": "-" if ratio is None else f"{ratio:.2f}",
    }


def _top_pairs(report: dict[str, Any]) -> list[list[Any]] | None:
    if "top_pairs" not in report:
        return None
    return [
        [
            f"{p['similarity_pct']:.4f}",
            f"{p['distance']:.4f}",
            p["group"],
            page.code(p["left"]),
            page.code(p["right"]),
        ]
        for p in report["top_pairs"]
    ]


def render_pairs(
    report: dict[str, Any], kinds: Sequence[str], title: str, rendered_at: str | None
) -> str:
    """The page of a report of scored pairs; ``kinds``: ``("fnmr", "fmr")`` (verification) or
    ``("fmr",)`` (impostors: every pair shows two people)."""
    unscored = {g: c for g, c in report.get("unscored_pairs", {}).items() if any(c.values())}
    detection = report.get("failure_to_detect")
    return page.render(
        "pairs.html",
        report,
        title,
        rendered_at,
        kinds=kinds,
        mapping=page.threshold_rows(report["thresholds"]),
        pairs=", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.get("pairs", {}).items()),
        unscored=[[g, c["mated"], c["nonmated"]] for g, c in unscored.items()],
        detection=None if detection is None else _detection(detection),
        thresholds=[_threshold(t, kinds) for t in report["thresholds"]],
        errorbars=[e for e in (_errorbars(report, kind) for kind in kinds) if e is not None],
        det=_det(report) if "fnmr" in kinds else None,
        fmr_curve=None if "fnmr" in kinds else _fmr_curve(report),
        histograms=_histograms(report, kinds),
        top_pairs=_top_pairs(report),
    )
