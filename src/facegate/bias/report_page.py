"""The frame every bias report page shares: style, header, tables, figures, escaping.

Used by :mod:`facegate.bias.report_html` and :mod:`facegate.bias.report_classifier`. Every
function returns HTML; every text that came from a report is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;
max-width:1000px;margin:1.5em auto;padding:0 1em;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #999;margin-top:2em}
h3{font-size:1.05em;margin-top:1.5em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #bbb;padding:2px 6px;text-align:right;vertical-align:top}
th{background:#eee}td.l,th.l{text-align:left}
.small{color:#7a2e00;font-style:italic}.note{background:#f6f6f6;padding:.5em .8em;
border-left:4px solid #888}code{overflow-wrap:anywhere}svg{max-width:100%;height:auto}
figure{margin:1em 0;break-inside:avoid}figcaption{font-size:.9em}
@media print{body{max-width:none;margin:0}h2{break-before:auto}details{display:block}
details>summary{display:none}}
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * float(value):.3f}%"


def ci(interval: Any) -> str:
    if not interval:
        return "-"
    return f"{100 * float(interval[0]):.3f}% \u2013 {100 * float(interval[1]):.3f}%"


def num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A table of already-escaped cells; the first ``left`` columns are left-aligned."""

    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{text}</{tag}>"

    out = ["<table><thead><tr>"]
    out += [cell("th", i, esc(h)) for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def figure(svg: str, caption: str, table: str = "") -> str:
    details = f"<details><summary>Numbers plotted</summary>{table}</details>" if table else ""
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption>{details}</figure>"


def small(n: int, unit: str = "pairs") -> str:
    return f'<span class="small">too small: {n} {esc(unit)}</span>'


def header(report: dict[str, Any], title: str, rendered_at: str | None) -> list[str]:
    rows = [("Command", f"<code>{esc(report.get('command', '-'))}</code>")]
    if report.get("kind") != "classifier":  # a classifier audit involves no facegate model
        rows.append(("Model version", esc(report.get("model_version", "-"))))
        rows.append(("Similarity mapping", esc(report.get("similarity_version", "-"))))
    estimator = report.get("estimator")
    if isinstance(estimator, dict):  # facegate's own attribute estimator (--estimate)
        rows.append(("Estimator", esc(f"{estimator.get('attribute')} {estimator.get('version')}")))
        rows.append(("Method", esc(estimator.get("method", "-"))))
    for item in report.get("inputs", []):
        rows.append(
            ("Input", esc(f"{item['path']} ({item['rows']} rows, SHA-256 {item['sha256']})"))
        )
    if "dataset" in report:
        rows.append(("Data set", esc(report["dataset"])))
    for side in ("probes", "gallery"):
        if isinstance(report.get(side), dict):
            rows.append((f"{side.title()} data set", esc(report[side].get("dataset", "-"))))
    if "group_by" in report:
        rows.append(("Groups by", esc(", ".join(report["group_by"]))))
    for key, label in (("descriptors", "Descriptors"), ("review_note", "")):
        if isinstance(report.get(key), str) and label:
            rows.append((label, esc(report[key])))
    rows.append(("Report created", esc(report.get("created", "not recorded"))))
    if rendered_at:
        rows.append(("Page rendered", esc(rendered_at)))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<table>",
    ]
    out += [f'<tr><th class="l">{esc(k)}</th><td class="l">{v}</td></tr>' for k, v in rows]
    out.append("</table>")
    u = unit(report)
    what = (
        "cohort-normalised scores (lower is more alike)" if u == "score" else "descriptor distances"
    )
    thresholds = (
        f"Thresholds are Similarity percentages, converted to {what} by the "
        f"similarity mapping named above; a pair matches when its {u} is at or below the "
        f"threshold's {u}. "
        if report.get("kind") != "classifier"
        else ""
    )
    out.append(
        f'<p class="note">{thresholds}This page was generated from the JSON report alone; the '
        "JSON holds every number shown here.</p>"
    )
    return out


def unit(report: dict[str, Any]) -> str:
    """What a report's thresholds and pair values are in: ``score`` (the cohort-normalised
    score, which can be below 0 for near-identical images) or ``distance`` (raw descriptor
    distance; also every report made before ``"score"`` was recorded)."""
    return "score" if report.get("score") == "normalised" else "distance"


def footer() -> str:
    return "</body></html>\n"
