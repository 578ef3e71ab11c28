"""facegate/transparency.py's f-string HTML before it became a Jinja2 template, verbatim, kept only
for the before/after test (tests/test_html_templates.py)."""

# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:72rem;color:#1a1a1a;line-height:1.45;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #c8c8c8;padding:.25rem .5rem;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
caption{text-align:left;font-weight:600;padding:.25rem 0}
.small{color:#555;font-size:.9em}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _rate(entry: Mapping[str, Any] | None) -> str:
    if not entry or entry.get("rate") is None:
        return "&ndash;"
    text = (
        f"{entry['rate']:.2e} <span class=small>[{entry['ci_low']:.1e}, {entry['ci_high']:.1e}]"
        f" {entry['errors']}/{entry['pairs']}</span>"
    )
    return text + (" <em>too small</em>" if entry.get("too_small") else "")


def _table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Cells of ``rows`` are already HTML; ``caption`` and ``head`` are escaped here."""
    th = "".join(f"<th scope=col>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{_e(caption)}</caption><tr>{th}</tr>{body}</table>"


def _model_section(model: Mapping[str, Any]) -> list[str]:
    parts = [
        "<h2>What a Similarity means</h2>",
        f"<p>Descriptor model <code>{_e(model['model_version'])}</code>, Similarity mapping "
        f"<code>{_e(model['similarity_version'])}</code>.</p>",
    ]
    score = model.get("score", {})
    if score.get("kind") == "cohort-normalised":
        cohort = score.get("cohort") or {}
        parts.append(
            "<p>Scores are <strong>normalised without demographic labels</strong>: each"
            " distance is corrected by how crowded the two faces' neighbourhood of descriptor"
            f" space is, measured against {_e(cohort.get('centroids', '?'))} reference"
            f" centroids (each the mean of at least {_e(cohort.get('smallest_centroid', 20))}"
            " faces; no individual's descriptor is shipped).</p>"
        )
    if not model.get("table"):
        parts.append("<p><strong>This mapping is not calibrated</strong>: no measured false match"
                     " rate stands behind its values.</p>")  # fmt: skip
        return parts
    parts.append(
        f"<p>Scale: {_e(model['scale']['formula'])}. A false match rate (FMR) is the share of"
        " pairs of two different people that score at least the threshold; the false non-match"
        " rate (FNMR) the share of pairs of one person that score below it. Measured on held-out"
        f" data ({_e(model['scale'].get('weighting', ''))}); 95% Wilson intervals in brackets."
        f" Fitted by <code>{_e(model['fitted']['command'])}</code> on"
        f" {_e(model['fitted']['date'])}.</p>"
    )
    table = model["table"]
    datasets = list(table[0]["datasets"])
    head = ["Similarity", "distance", "promised FMR", "measured FMR (pooled)"]
    head += [f"{d} FMR" for d in datasets] + [f"{d} FNMR" for d in datasets]
    rows = []
    for r in table:
        cells = [
            _e(f"{r['similarity_pct']:g}"),
            _e(f"{r['distance']:.4f}"),
            _e(f"{r['target_fmr']:.1e}"),
            _e(f"{r['pooled_fmr']:.2e}"),
        ]
        cells += [_rate(r["datasets"][d]["fmr"]) for d in datasets]
        cells += [_rate(r["datasets"][d]["fnmr"]) for d in datasets]
        rows.append(cells)
    parts.append(_table("Error rates at each threshold", head, rows))
    for d in datasets:
        for grouping, first in table[0]["datasets"][d]["groups"].items():
            for kind in ("fmr", "fnmr"):
                if kind not in first:
                    continue
                head = ["group"] + [f"Similarity {r['similarity_pct']:g}" for r in table]
                group_rows = [
                    [_e(group)]
                    + [_rate(r["datasets"][d]["groups"][grouping][kind][group]) for r in table]
                    for group in first[kind]
                ]
                group_rows.append(
                    ["Max/GeoMean"]
                    + [
                        _e(_ratio(r["datasets"][d]["groups"][grouping][f"{kind}_max_geomean"]))
                        for r in table
                    ]
                )
                parts.append(_table(f"{d}: {kind.upper()} by {grouping}", head, group_rows))
    return parts


def _descriptor_models_section(models: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every descriptor model: a collection keeps its own, and each number is on its scale."""
    if not models:
        return []
    rows = []
    for m in models:
        if m["serves_searches"]:
            calibration = m["calibration"]
            at99 = next(
                (r for r in calibration.get("table", []) if r["similarity_pct"] == 99.0), None
            )
            state = f"<code>{_e(calibration['similarity_version'])}</code>"
            if at99 is not None:
                fmr = f"{at99['pooled_fmr']:.2e}"
                state += f"; at Similarity 99 pooled held-out FMR {_e(fmr)}"
        else:
            state = f"serves no search: {_e(m['why_not'])}"
        rows.append(
            [
                f"<code>{_e(m['version'])}</code>" + (" (default)" if m["default"] else ""),
                _e(m["space"]),
                _e(m["description"]),
                _e(m["terms"]),
                state,
            ]
        )
    return [
        "<h2>Descriptor models</h2>",
        "<p>Each collection keeps the descriptor model it was created with (its"
        " FaceModelVersion) until it is deleted; faces of different models are never compared,"
        " and every Similarity is on the scale of its own model's calibration.</p>",
        _table("Descriptor models", ["model", "vectors", "what", "terms", "Similarity"], rows),
    ]


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render_html(doc: Mapping[str, Any]) -> str:
    """One self-contained HTML page of :func:`transparency_document`'s output."""
    gate = doc["deployment_gate"]
    status = gate["status"]
    enforced = ", ".join(gate["enforced_by"]) or "no active pack (searches are not gated)"
    audit = gate["audit"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>facegate transparency</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>facegate {_e(doc['service']['version'])}: transparency</h1>",
        f"<p class=small>Generated {_e(doc['service']['generated_at'])}.</p>",
        *_model_section(doc["model"]),
        *_descriptor_models_section(doc.get("descriptor_models") or []),
        "<h2>Deployment gate</h2>",
        f"<p>Enforced by: {_e(enforced)}. Bounds: at Similarity"
        f" {_e(gate['bounds']['threshold_pct'])}, FMR Max/GeoMean at most"
        f" {_e(gate['bounds']['max_fmr_ratio'])} and the worst group's FNMR at most"
        f" {_e(gate['bounds']['max_fnmr'])}.</p>",
        "<p>Registered audit of the active model: "
        + (
            "none"
            if audit is None
            else f"<code>{_e(audit['audit_id'])}</code> (registered {_e(audit['registered_at'])},"
            f" {_e(audit['dataset'])}, report SHA-256 <code>{_e(audit['report_sha256'])}</code>)"
        )
        + f". Within bounds: <strong>{_e('yes' if status.get('within_bounds') else 'no')}"
        "</strong>.</p>",
    ]
    reasons = status.get("reasons") or []
    if reasons:
        parts.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>")
    policy = doc["policy"]
    parts.append("<h2>Policies in force</h2>")
    parts.append(f"<p>Packs: {_e(', '.join(policy['packs']))}.</p>")
    parts.append(
        _table(
            "Policies",
            ["id", "effect", "reason", "source"],
            [
                [_e(p["id"]), _e(p["effect"]), _e(p["reason"]), _e(p["source"])]
                for p in policy["policies"]
            ],
        )
    )
    parts.extend(_attributes_section(doc.get("attributes")))
    parts.append("</body></html>")
    return "\n".join(parts)


def _held_out(entry: Mapping[str, Any]) -> str:
    measured = entry.get("measured") or {}
    if measured.get("summary"):
        return str(measured["summary"])
    random = measured.get("held_out_random") or {}
    if not random.get("faces"):
        return "not published"
    return (
        f"{random['accuracy']:.1%} on {random['faces']} held-out random faces "
        f"(always the commoner answer: {random['majority_baseline']:.1%}; AUC {random['auc']:.2f})"
    )


def _attributes_section(attributes: Mapping[str, Any] | None) -> list[str]:
    if not attributes:
        return []
    rows = [
        [_e(a["member"]), _e(a["method"]), _e(_held_out(a)), f"<code>{_e(a['version'])}</code>"]
        for a in attributes["estimated"]
    ]
    missing = ", ".join(attributes["not_estimated"]) or "none"
    parts = [
        "<h2>Facial attributes</h2>",
        f"<p>{_e(attributes['note'])}</p>",
        _table("Estimated", ["attribute", "method", "measured", "version"], rows),
        f"<p>Not returned by this server (no estimator, or its face model is not enabled):"
        f" {_e(missing)}.</p>",
    ]
    models = attributes.get("face_models")
    if models:
        enabled = ", ".join(models["enabled"]) or "none (the default)"
        parts += [
            f"<h3>Face models for attributes ({_e(models['setting'])})</h3>",
            f"<p>Enabled: <strong>{_e(enabled)}</strong>. {_e(models['why_off_by_default'])}</p>",
            _table(
                "Face models that back attributes",
                ["model", "attributes", "enabled", "task", "training data"],
                [
                    [
                        _e(m["name"]),
                        _e(", ".join(m["attributes"])),
                        _e("yes" if m["enabled"] else "no"),
                        _e(m["task"]),
                        _e(m["training_data"]),
                    ]
                    for m in models["models"]
                ],
            ),
        ]
    return parts
