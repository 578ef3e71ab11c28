"""Self-contained HTML pages for the bias reports, made from the JSON report dict only.

:func:`render_html` dispatches on the report's ``"kind"`` (``verification``, ``impostors``,
``lineup``, ``sweep``, ``classifier``), so a page can be re-made later from a saved JSON report
(``facegate bias html REPORT.json --out OUT.html``). The page has no scripts and loads nothing:
styles are inline, plots are inline SVG (:mod:`facegate.bias.plots`), image paths are text. It
prints on paper. Every text from the report is escaped. Each section says how to read it, and
each plot sits next to a table of the same numbers. Groups too small to measure are shown as
"too small: n pairs", never left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from facegate.bias import report_page as page
from facegate.bias.plots import (
    ErrorSeries,
    Estimate,
    Mark,
    Series,
    bar_chart,
    errorbar_chart,
    fmt_pct,
    histogram,
    line_chart,
)
from facegate.bias.report_classifier import render_classifier
from facegate.bias.report_page import esc as _e
from facegate.bias.report_scores import render_score_comparison

HOW_RATES = (
    "FMR (false match rate) is the share of pairs of two different people that the engine "
    "matches at the threshold; FNMR (false non-match rate) is the share of pairs of one person "
    "that it does not match. Each group's rate comes with a 95% Wilson score interval (the "
    "range of rates compatible with these counts). A group with fewer pairs than the minimum "
    "is shown as \u201ctoo small: n pairs\u201d and left out of the summaries. Summaries over "
    "the groups: max and min rate, their difference and ratio; Max/GeoMean (NIST FRVT Part 8: "
    "the highest group rate divided by the geometric mean of the non-zero group rates; 1 means "
    "no disparity) with a 95% bootstrap interval that resamples subjects; and the Fairness "
    "Discrepancy Rate (FDR, alpha 0.5: 1 minus half the largest FMR gap minus half the largest "
    "FNMR gap; 1 means equal rates)."
)
HOW_DET = (
    "A DET (detection error trade-off) curve shows, for one group, every trade-off between "
    "false matches and false non-matches as the {unit} threshold moves: FMR on a log scale "
    "along the bottom, FNMR up the side. Lower-left is better. A curve above another means "
    "more false non-matches for the same false match rate. The large hollow markers are the "
    "report's operating thresholds (labelled with their Similarity)."
)
HOW_HIST = (
    "{Unit} distributions: for each group, the share of its mated (same person) and "
    "non-mated (different people) pairs in each {unit} bin (width 0.02). A pair matches "
    "when its {unit} is at or below the threshold line, so non-mated pairs left of a line are "
    "false matches and mated pairs right of it are false non-matches."
)
HOW_ERRORBARS = (
    "Each point is one group's rate at a threshold, with its 95% Wilson interval as an error "
    "bar; overlapping bars mean the data cannot tell the groups apart. The rate axis is "
    "logarithmic; a rate of exactly 0 is drawn on the separate 0 line at the bottom."
)


def _mapping(thresholds: Sequence[dict[str, Any]], unit: str = "distance") -> str:
    rows = [[_e(f"{t['similarity_pct']:g}"), _e(f"{t['distance']:.4f}")] for t in thresholds]
    return "<h2>Thresholds</h2>" + page.table(["Similarity", f"{unit} (match when \u2264)"], rows)


def _heading(t: dict[str, Any], unit: str = "distance") -> str:
    pct, distance = float(t["similarity_pct"]), float(t["distance"])
    return f"<h3>Similarity {pct:g} (match when {unit} \u2264 {distance:.4f})</h3>"


# --- verification and impostors ------------------------------------------------------------------


def _rate_cells(row: dict[str, Any], kind: str, *, check: bool) -> list[str]:
    errors_key = "false_matches" if kind == "fmr" else "false_non_matches"
    pairs_key = "nonmated_pairs" if kind == "fmr" else "mated_pairs"
    errors, pairs = row.get(errors_key, 0), row.get(pairs_key, 0)
    counts = f"{errors}/{pairs}"
    if check and pairs and not row.get(f"{kind}_measurable", True):
        return [_e(counts), page.small(pairs), _e(page.ci(row.get(f"{kind}_ci")))]
    return [_e(counts), _e(page.pct(row.get(kind))), _e(page.ci(row.get(f"{kind}_ci")))]


def _summary(t: dict[str, Any], kinds: Sequence[str]) -> str:
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
        items.append(f"<li>{_e(text)}</li>")
    if len(kinds) == 2:
        items.append(f"<li>FDR (alpha 0.5): {_e(page.num(t.get('fdr')))}</li>")
    return f"<ul>{''.join(items)}</ul>"


def _threshold_section(t: dict[str, Any], kinds: Sequence[str], unit: str = "distance") -> str:
    out = [_heading(t, unit)]
    if t.get("overall") is None:
        return out[0] + "<p>No scored within-group pairs.</p>"
    head = ["group"]
    for kind in kinds:
        k = kind.upper()
        head += [f"{k} errors/pairs", k, f"{k} 95% CI"]
    rows = []
    for g in t["groups"]:
        row = [_e(g["group"])]
        for kind in kinds:
            row += _rate_cells(g, kind, check=True)
        rows.append(row)
    overall = ["overall"]
    for kind in kinds:
        overall += _rate_cells(t["overall"], kind, check=False)
    rows.append(overall)
    cross = t.get("cross_group")
    if cross:
        row = [_e("(cross-group, not in summaries)")]
        for kind in kinds:
            row += _rate_cells(cross, kind, check=False)
        rows.append(row)
    out.append(page.table(head, rows))
    out.append(_summary(t, kinds))
    return "".join(out)


def _group_label(name: str, n: int, measurable: bool) -> str:
    return name if measurable else f"{name} (too small: {n} pairs)"


def _errorbars(report: dict[str, Any], kind: str) -> str:
    thresholds = report["thresholds"]
    names: list[str] = []
    for t in thresholds:
        names += [g["group"] for g in t.get("groups", []) if g["group"] not in names]
    if not names:
        return ""
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
                label = _group_label(name, g[pairs_key], False)
                values.append(None)
                continue
            lo, hi = g[f"{kind}_ci"]
            values.append(Estimate(g[kind], lo, hi))
        series.append(ErrorSeries(label, values))
        rows.append(
            [_e(label)]
            + [
                "-"
                if v is None
                else _e(f"{page.pct(v.value)} [{page.pct(v.low)}, {page.pct(v.high)}]")
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
    return f"<h3>{k} per group</h3><p>{_e(HOW_ERRORBARS)}</p>" + page.figure(
        svg, f"{k} per group and threshold.", page.table(["group", *cats], rows)
    )


def _operating_points(report: dict[str, Any], group: str) -> list[tuple[float, float, str]]:
    out = []
    for t in report["thresholds"]:
        rows = t.get("groups", []) if group != "overall" else [t.get("overall") or {}]
        g = next((x for x in rows if group == "overall" or x.get("group") == group), None)
        if g and g.get("fmr") is not None and g.get("fnmr") is not None:
            out.append((float(g["fmr"]), float(g["fnmr"]), f"{t['similarity_pct']:g}"))
    return out


def _det_section(report: dict[str, Any]) -> str:
    det = report.get("det")
    if not det:
        return ""
    min_pairs = _min_pairs(report)
    series = []
    rows = []
    for name, c in det["groups"].items():
        ok = c["mated_pairs"] >= min_pairs and c["nonmated_pairs"] >= min_pairs
        if name == "overall":
            ok = c["mated_pairs"] > 0 and c["nonmated_pairs"] > 0
        n = min(c["mated_pairs"], c["nonmated_pairs"])
        label = _group_label(name, n, ok)
        pts = list(zip(c["fmr"], c["fnmr"], strict=True)) if ok else []
        series.append(Series(label, pts, _operating_points(report, name) if ok else ()))
        rows.append(
            [_e(label), _e(c["mated_pairs"]), _e(c["nonmated_pairs"])]
            + [
                _e(page.pct(c["fmr"][i]) + " / " + page.pct(c["fnmr"][i]))
                for i in _sample_idx(c["fmr"])
            ]
        )
    idx = _sample_idx(det["thresholds"])
    head = ["group", "mated", "non-mated"] + [
        f"{page.unit(report)} {det['thresholds'][i]:.3f} (Sim {det['similarity_pct'][i]:g}): "
        "FMR / FNMR"
        for i in idx
    ]
    svg = line_chart(
        "det",
        "DET curves per group",
        f"FNMR against FMR (log scale) as the {page.unit(report)} threshold moves, one line "
        "per group; "
        "hollow markers are the operating thresholds.",
        series,
        x_label="FMR (log scale)",
        y_label="FNMR",
        log_x=True,
        x_format=fmt_pct,
        y_format=fmt_pct,
    )
    how = HOW_DET.format(unit=page.unit(report))
    return f"<h2>DET curves</h2><p>{_e(how)}</p>" + page.figure(
        svg, "DET curves per group.", page.table(head, rows)
    )


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


def _fmr_curve_section(report: dict[str, Any]) -> str:
    """Impostor-only: FMR per group against Similarity (there is no FNMR for a DET)."""
    det = report.get("det")
    if not det:
        return ""
    min_pairs = _min_pairs(report)
    series = []
    for name, c in det["groups"].items():
        ok = c["nonmated_pairs"] >= (1 if name == "overall" else min_pairs)
        label = _group_label(name, c["nonmated_pairs"], ok)
        pts = list(zip(det["similarity_pct"], c["fmr"], strict=True)) if ok else []
        series.append(Series(label, pts))
    marks = [
        Mark(t["similarity_pct"], f"Similarity {t['similarity_pct']:g}")
        for t in report["thresholds"]
    ]
    svg = line_chart(
        "fmr-curve",
        "FMR per group against Similarity",
        "FMR (log scale) of each group as the Similarity threshold moves; dotted lines are the "
        "operating thresholds.",
        series,
        x_label="Similarity threshold",
        y_label="FMR (log scale)",
        log_y=True,
        marks=marks,
        y_format=fmt_pct,
    )
    return (
        "<h2>FMR across thresholds</h2><p>Every pair is presumed to show two different people, "
        "so only false matches can be counted. Each line is one group's FMR as the Similarity "
        "threshold moves; higher lines mean more false matches at the same threshold.</p>"
        + page.figure(svg, "FMR per group against Similarity.")
    )


def _histogram_section(report: dict[str, Any], kinds: Sequence[str]) -> str:
    hist = report.get("histograms")
    if not hist:
        return ""
    edges = hist["bin_edges"]
    marks = [Mark(t["distance"], f"Sim {t['similarity_pct']:g}") for t in report["thresholds"]]
    u = page.unit(report)
    how = HOW_HIST.format(unit=u, Unit=u.capitalize())
    out = [f"<h2>{u.capitalize()} distributions</h2><p>{_e(how)}</p>"]
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
            rows.append([_e(label), _e(total), _e(below), _e(h[f"{side}_above"])])
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
        table = page.table(["pairs", "count", "below 0", f"above {edges[-1]:g}"], rows)
        out.append(
            f"<h3>{_e(name)}</h3>" + table + page.figure(svg, f"{u.capitalize()}s of {name}.")
        )
    return "".join(out)


def _detection_section(doc: dict[str, Any]) -> str:
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
            _e(g),
            _e(f"{r['no_face']}/{r['images']}"),
            page.pct(r["rate"]),
            page.ci(r["ci"]),
            _e(", ".join(f"{k} {v}" for k, v in r["found_by"].items()) or "-"),
        ]
        for g, r in [("overall", doc["overall"]), *groups.items()]
    ]
    ratio = doc.get("worst_best_ratio")
    text = (
        "<h2>Failure to detect</h2><p>An image where no face is found is never matched: a"
        " failure to enrol that the error rates below cannot show. Worst/best group ratio: "
        + ("-" if ratio is None else _e(f"{ratio:.2f}"))
        + ".</p>"
    )
    return text + page.figure(
        svg,
        "No face found, per group.",
        page.table(["group", "no face", "rate", "95% interval", "found by"], rows),
    )


def _pairs_page(
    report: dict[str, Any], kinds: Sequence[str], title: str, rendered_at: str | None
) -> str:
    out = page.header(report, title, rendered_at)
    out.append(_mapping(report["thresholds"], page.unit(report)))
    pairs = report.get("pairs", {})
    out.append(
        "<h2>Pairs</h2><p>"
        + _e(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in pairs.items()))
        + "</p>"
    )
    unscored = {g: c for g, c in report.get("unscored_pairs", {}).items() if any(c.values())}
    if unscored:
        out.append(
            "<p>Pairs with an image where no face was found are not scored and not in the "
            "rates:</p>"
            + page.table(
                ["group", "mated", "non-mated"],
                [[_e(g), _e(c["mated"]), _e(c["nonmated"])] for g, c in unscored.items()],
            )
        )
    else:
        out.append("<p>Every pair was scored (both images have a face descriptor).</p>")
    if "failure_to_detect" in report:
        out.append(_detection_section(report["failure_to_detect"]))
    out.append(f"<h2>Error rates per group</h2><p>{_e(HOW_RATES)}</p>")
    out += [_threshold_section(t, kinds, page.unit(report)) for t in report["thresholds"]]
    out += [_errorbars(report, kind) for kind in kinds]
    out.append(_det_section(report) if "fnmr" in kinds else _fmr_curve_section(report))
    out.append(_histogram_section(report, kinds))
    if "top_pairs" in report:
        out.append(
            "<h2>Highest-similarity pairs, for human review</h2>"
            f"<p>{_e(report.get('review_note', ''))}</p>"
        )
        out.append(
            page.table(
                ["Similarity", page.unit(report), "group", "left image", "right image"],
                [
                    [
                        _e(f"{p['similarity_pct']:.4f}"),
                        _e(f"{p['distance']:.4f}"),
                        _e(p["group"]),
                        f"<code>{_e(p['left'])}</code>",
                        f"<code>{_e(p['right'])}</code>",
                    ]
                    for p in report["top_pairs"]
                ],
                left=0,
            )
        )
    out.append(page.footer())
    return "\n".join(out)


def _verification(report: dict[str, Any], rendered_at: str | None) -> str:
    return _pairs_page(report, ("fnmr", "fmr"), "Verification accuracy by group", rendered_at)


def _impostors(report: dict[str, Any], rendered_at: str | None) -> str:
    return _pairs_page(report, ("fmr",), "False matches by group (impostor pairs)", rendered_at)


# --- lineup --------------------------------------------------------------------------------------


def _lineup(report: dict[str, Any], rendered_at: str | None) -> str:
    out = page.header(report, "Lineup: probes searched against a gallery", rendered_at)
    thresholds = report["thresholds"]
    out.append(_mapping(thresholds, page.unit(report)))
    declared = report.get("declared_true", {})
    out.append(
        "<h2>How to read this</h2><p>Every probe face was searched against the whole gallery. "
        f"A gallery image matches when its {page.unit(report)} is at or below the threshold. "
        "When the "
        "gallery is presumed not to contain the probes' people, every match is false, unless "
        "the operator declared the pair a true match; declared probes are counted apart. Per "
        "group: the share of searched probes with at least one false match, with a 95% Wilson "
        f"interval. Declared true pairs: {sum(len(v) for v in declared.values())} for "
        f"{len(declared)} probes. Probes without a face are counted, not searched.</p>"
    )
    names: list[str] = []
    for t in thresholds:
        names += [g["group"] for g in t["groups"] if g["group"] not in names]
    series = []
    for name in names:
        values: list[float | None] = []
        label = name
        for t in thresholds:
            g = next((x for x in t["groups"] if x["group"] == name), None)
            values.append(None if g is None else g["false_match_share"])
            if g is not None and not g["searched"]:
                label = f"{name} (too small: 0 searched)"
        series.append((label, values))
    cats = [f"Similarity {t['similarity_pct']:g}" for t in thresholds]
    svg = bar_chart(
        "lineup-share",
        "Share of probes with at least one false match",
        "Per threshold, one bar per probe group: searched probes with a false match / searched.",
        cats,
        series,
        x_label="threshold",
        y_label="probes with a false match",
        y_format=fmt_pct,
    )
    out.append(
        "<h2>Probes with a false match</h2>"
        + page.figure(svg, "Share of probes with ≥1 false match by group.")
    )
    for t in thresholds:
        out.append(_heading(t, page.unit(report)))
        rows = [
            [
                _e(g["group"]),
                _e(g["probes"]),
                _e(g["no_face"]),
                _e(g["declared_present"]),
                _e(g["searched"]),
                _e(g["with_false_match"]),
                _e(page.pct(g["false_match_share"]))
                if g["searched"]
                else page.small(0, "probes searched"),
                _e(page.ci(g["interval"])),
                _e(g["declared_found"]),
            ]
            for g in t["groups"]
        ]
        out.append(
            page.table(
                [
                    "probe group",
                    "probes",
                    "no face",
                    "declared",
                    "searched",
                    "with false match",
                    "share",
                    "95% CI",
                    "declared found",
                ],
                rows,
            )
        )
        matches = t.get("matches", [])
        out.append(f"<p>Listed matches ({len(matches)}; image paths, no images):</p>")
        if matches:
            out.append(
                page.table(
                    ["Similarity", page.unit(report), "kind", "probe", "gallery"],
                    [
                        [
                            _e(f"{m['similarity_pct']:.4f}"),
                            _e(f"{m['distance']:.4f}"),
                            _e("TRUE (declared)" if m["declared_true"] else "false"),
                            f"<code>{_e(m['probe'])}</code>",
                            f"<code>{_e(m['gallery'])}</code>",
                        ]
                        for m in matches
                    ],
                    left=0,
                )
            )
    if report.get("identification"):
        out.append(_identification(report["identification"]))
    out.append(page.footer())
    return "\n".join(out)


def _rate_cell(r: dict[str, Any]) -> str:
    if r["rate"] is None:
        return "-"
    return f"{page.pct(r['rate'])} ({page.ci(r['ci'])}; {r['count']}/{r['searches']})"


def _identification(doc: dict[str, Any]) -> str:
    """NIST FRVT 1:N measures (facegate.bias.identification), as tables."""
    k = doc["rank_k"]
    out = [
        "<h2>1:N identification (NIST FRVT measures)</h2>"
        f"<p>{doc['mated_searches']} mated searches (probes with a mate in the gallery) and "
        f"{doc['nonmated_searches']} non-mated searches (every probe with its mates left out). "
        "FPIR: non-mated searches returning any candidate; FNIR: mated searches whose mate is "
        "not returned; non-mate with mate: a wrong person returned beside the true one; "
        "non-mate above mate: a wrong person returned and ranked above the true one. 95% "
        "Wilson intervals.</p>",
        page.table(
            ["group", "rank-1 rate", f"rank-{k} rate"],
            [
                [_e(g), _e(_rate_cell(r["rank_1"])), _e(_rate_cell(r[f"rank_{k}"]))]
                for g, r in doc["ranks"].items()
            ],
        ),
    ]
    for entry in doc["fnir_at_fpir"]:
        if entry["score"] is None:
            continue
        boot = entry.get("fnir_bootstrap_ci")
        note = "" if boot is None else f"; overall bootstrap interval {page.ci(boot)}"
        out.append(
            f"<h3>FNIR at FPIR {entry['fpir_target']:g} (Similarity "
            f"{entry['similarity_pct']:g}{_e(note)})</h3>"
            + page.table(
                ["group", "FNIR"],
                [[_e(g), _e(_rate_cell(r["fnir"]))] for g, r in entry["groups"].items()],
            )
        )
    for t in doc["thresholds"]:
        cols = ("fpir", "fnir", "nonmate_with_mate", "nonmate_above_mate")
        out.append(
            f"<h3>At Similarity {t['similarity_pct']:g}</h3>"
            + page.table(
                ["group", "FPIR", "FNIR", "non-mate with mate", "non-mate above mate"],
                [[_e(g), *(_e(_rate_cell(r[c])) for c in cols)] for g, r in t["groups"].items()],
            )
        )
    return "".join(out)


# --- sweep ---------------------------------------------------------------------------------------


def _sweep_chart(report: dict[str, Any], kind: str) -> str:
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
                label = _group_label(name, g[pairs_key], False)
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
    return line_chart(
        f"sweep-{kind}",
        f"{k} per group against Similarity",
        f"{k} (log scale) per group across the swept Similarity thresholds; the dotted lines mark "
        "the lowest balanced threshold and the first imbalanced one.",
        series,
        x_label="Similarity threshold",
        y_label=f"{k} (log scale)",
        log_y=True,
        marks=marks,
        y_format=fmt_pct,
    )


def _balance_text(report: dict[str, Any], kind: str) -> str:
    b = (report.get("balance") or {}).get(kind)
    k = kind.upper()
    if b is None:
        return f"<p>{k}: no group has enough pairs of this type; not tested.</p>"
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
            _e(f"{c['similarity_pct']:g}"),
            _e(f"{c['distance']:.4f}"),
            _e("yes" if c["balanced"] else "NO"),
            _e(f"{c['min_p']:.3g}"),
            _e(" vs ".join(c["worst_pair"]) if c["worst_pair"] else "-"),
        ]
        for c in b["checks"]
    ]
    table = page.table(
        ["Similarity", page.unit(report), "balanced", "smallest p", "that pair"], rows, left=0
    )
    return f"<p>{_e(text)}</p><details><summary>Tests at every threshold</summary>{table}</details>"


def _sweep(report: dict[str, Any], rendered_at: str | None) -> str:
    out = page.header(report, "Threshold sweep: error rates by group", rendered_at)
    test = report["test"]
    has_fnmr = any(g["mated_pairs"] for p in report["points"] for g in p["groups"])
    kinds = ("fmr", "fnmr") if has_fnmr else ("fmr",)
    correction = (
        "Bonferroni correction: the level is alpha divided by the number of group pairs"
        if test["bonferroni"]
        else "no multiple-comparison correction"
    )
    out.append(
        "<h2>How to read this</h2><p>As in the UK NPL study of live facial recognition (2023): "
        "each group's error rates across a range of Similarity thresholds, and the lowest "
        "threshold at which no group is treated significantly differently. At each threshold "
        f"every two groups with at least {report['min_pairs']} pairs are compared with "
        f"{_e(test['name'])}, alpha {test['alpha']:g}, {correction}. Scanning from the "
        "highest Similarity down, the lowest balanced threshold is the last one before the "
        "first significant difference, so every higher swept threshold is balanced too. Not "
        "significant does not mean equal: small groups have wide intervals. "
        f"{_e(HOW_RATES)}</p>"
    )
    pairs = report.get("pairs", {})
    out.append(
        "<p>Pairs: "
        + _e(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in pairs.items()))
        + "</p>"
    )
    out.append("<h2>Balance</h2>" + "".join(_balance_text(report, k) for k in kinds))
    for kind in kinds:
        k = kind.upper()
        out.append(
            f"<h2>{k} across thresholds</h2>"
            + page.figure(_sweep_chart(report, kind), f"{k} per group against Similarity.")
        )
        names = [g["group"] for g in report["points"][0]["groups"]] if report["points"] else []
        pairs_key = "nonmated_pairs" if kind == "fmr" else "mated_pairs"
        head = ["Similarity", page.unit(report)] + [
            f"{n} ({report['points'][0]['groups'][i][pairs_key]} pairs)"
            for i, n in enumerate(names)
        ]
        rows = []
        for p in report["points"]:
            row = [_e(f"{p['similarity_pct']:g}"), _e(f"{p['distance']:.4f}")]
            for g in p["groups"]:
                n = g[pairs_key]
                if n and not g[f"{kind}_measurable"]:
                    row.append(page.small(n))
                else:
                    row.append(_e(f"{page.pct(g[kind])} [{page.ci(g[f'{kind}_ci'])}]"))
            rows.append(row)
        out.append(page.table(head, rows, left=0))
    out.append(page.footer())
    return "\n".join(out)


Renderer = Callable[[dict[str, Any], str | None], str]
RENDERERS: dict[str, Renderer] = {
    "verification": _verification,
    "impostors": _impostors,
    "lineup": _lineup,
    "sweep": _sweep,
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
