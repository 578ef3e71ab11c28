"""The HTML page of a ``lineup`` report (template ``lineup.html``): probes searched against a
gallery, the share of probes with a false match per group and threshold (chart and tables), the
listed matches as image paths, and the NIST FRVT 1:N measures when the report has them. This
module gives the template numbers and text only (see :mod:`facegate.bias.report_page`).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from facegate.bias import report_page as page
from facegate.bias.plots import bar_chart, fmt_pct


def _chart(thresholds: list[dict[str, Any]]) -> Markup:
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
    return page.chart(
        bar_chart(
            "lineup-share",
            "Share of probes with at least one false match",
            "Per threshold, one bar per probe group: searched probes with a false match / "
            "searched.",
            [f"Similarity {t['similarity_pct']:g}" for t in thresholds],
            series,
            x_label="threshold",
            y_label="probes with a false match",
            y_format=fmt_pct,
        )
    )


def _groups(t: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            g["group"],
            g["probes"],
            g["no_face"],
            g["declared_present"],
            g["searched"],
            g["with_false_match"],
            page.pct(g["false_match_share"]) if g["searched"] else page.small(0, "probes searched"),
            page.ci(g["interval"]),
            g["declared_found"],
        ]
        for g in t["groups"]
    ]


def _matches(t: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            f"{m['similarity_pct']:.4f}",
            f"{m['distance']:.4f}",
            "TRUE (declared)" if m["declared_true"] else "false",
            page.code(m["probe"]),
            page.code(m["gallery"]),
        ]
        for m in t.get("matches", [])
    ]


def _rate(r: dict[str, Any]) -> str:
    if r["rate"] is None:
        return "-"
    return f"{page.pct(r['rate'])} ({page.ci(r['ci'])}; {r['count']}/{r['searches']})"


def _identification(doc: dict[str, Any]) -> dict[str, Any]:
    """NIST FRVT 1:N measures (:mod:`facegate.bias.identification`) as table rows."""
    k = doc["rank_k"]
    fnir = []
    for entry in doc["fnir_at_fpir"]:
        if entry["score"] is None:
            continue
        boot = entry.get("fnir_bootstrap_ci")
        fnir.append(
            {
                "entry": entry,
                "note": "" if boot is None else f"; overall bootstrap interval {page.ci(boot)}",
                "rows": [[g, _rate(r["fnir"])] for g, r in entry["groups"].items()],
            }
        )
    cols = ("fpir", "fnir", "nonmate_with_mate", "nonmate_above_mate")
    return {
        "doc": doc,
        "ranks": [[g, _rate(r["rank_1"]), _rate(r[f"rank_{k}"])] for g, r in doc["ranks"].items()],
        "fnir": fnir,
        "thresholds": [
            {"t": t, "rows": [[g, *(_rate(r[c]) for c in cols)] for g, r in t["groups"].items()]}
            for t in doc["thresholds"]
        ],
    }


def render_lineup(report: dict[str, Any], rendered_at: str | None) -> str:
    """The page of one ``kind: lineup`` report."""
    thresholds = report["thresholds"]
    declared = report.get("declared_true", {})
    identification = report.get("identification")
    return page.render(
        "lineup.html",
        report,
        "Lineup: probes searched against a gallery",
        rendered_at,
        mapping=page.threshold_rows(thresholds),
        declared_pairs=sum(len(v) for v in declared.values()),
        declared_probes=len(declared),
        chart=_chart(thresholds),
        thresholds=[{"t": t, "groups": _groups(t), "matches": _matches(t)} for t in thresholds],
        identification=_identification(identification) if identification else None,
    )
