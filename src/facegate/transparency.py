"""``GET /transparency``: what the running service is, what its thresholds mean, what governs it.

Public and read-only: it holds no secret and nothing about any person. The document has

* ``model``: the default descriptor model (``FACEGATE_FACE_MODEL``: new collections and
  CompareFaces) and Similarity mapping versions, the score (raw distance or
  cohort-normalised, with the cohort's size); for a calibrated mapping its
  scale and the measured table (FMR and FNMR, overall, per data set and per group, on held-out
  data, with Wilson 95% intervals) from the shipped calibration document;
* ``descriptor_models``: every descriptor model a collection may be pinned to (each keeps its
  own until it is deleted), with its source, terms, vector space, and the Similarity version
  and measured table of its calibration (or why it serves no search);
* ``deployment_gate``: whether a gate policy is active, the operator's bounds, the registered
  audit of the active model (id, date, data set, report SHA-256) and whether it is within bounds;
* ``policy``: the active packs and each policy's id, effect, reason and cited source;
* ``attributes``: the facial attributes this server estimates when asked (DetectFaces'
  ``Attributes``, IndexFaces' ``DetectionAttributes``), each with its estimator's version,
  method and held-out measurements, and those it never returns; which converted face models
  the operator enabled for attributes (``FACEGATE_ATTRIBUTE_MODELS``), what each one's training
  data are, and why they are off by default (docs/attributes.md).

:func:`render_html` turns the document into one self-contained page (no scripts, no external
resources, every text escaped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from facegate import __version__
from facegate.admin.views import iso
from facegate.engine.attributes.registry import ESTIMATORS, catalogue
from facegate.engine.human_catalogue import model_spec
from facegate.engine.matching import Matcher
from facegate.engine.similarity import (
    CalibratedSimilarity,
    calibration_document,
    holdout_summary,
)
from facegate.operations import ATTRIBUTE_MEMBERS, FACE_ATTRIBUTES
from facegate.services import Services

GATE_PACKS = ("deployment-gate", "wa-rcw-43-386")
"""Packs whose policies read the deployment gate."""


def _calibration(services: Services, matcher: Matcher | None = None) -> dict[str, Any]:
    """The calibration section of ``matcher`` (default: the default model's)."""
    matcher = matcher or services.deps.matcher
    similarity = matcher.similarity
    model_version, similarity_version = (
        services.active_model if matcher is services.deps.matcher else (
            matcher.model_version, matcher.version
        )
    )  # fmt: skip
    out: dict[str, Any] = {
        "model_version": model_version,
        "similarity_version": similarity_version,
        "score": {
            "kind": "cohort-normalised" if matcher.normalised else "raw distance",
            "scorer": matcher.scorer.version,
        },
        "calibrated": False,
    }
    if isinstance(similarity, CalibratedSimilarity):
        doc = calibration_document(
            similarity.model_version, similarity.variant, similarity.directory
        )
        out.update(
            calibrated=doc["model_version"] == model_version,
            scale=doc["scale"],
            fitted=doc["fitted"],
            table=doc["table"],
            uncalibrated_predecessor=doc.get("legacy_v0", []),
        )
        if doc.get("cohort_fit"):
            out["score"]["cohort"] = doc["cohort_fit"]
        held_out = holdout_summary(
            similarity.model_version, similarity.variant, similarity.directory
        )
        # published only for the mapping it checked: a recalibration makes it stale
        if held_out is not None and held_out.get("similarity_version") == similarity_version:
            out["held_out"] = held_out
    return out


def _descriptor_models(services: Services) -> list[dict[str, Any]]:
    """Every descriptor model with its calibration, or why it serves no search."""
    matchers = services.deps.matchers
    if matchers is None:
        return []
    out = []
    for model in matchers.registry.models:
        entry: dict[str, Any] = {
            "version": model.version,
            "kind": model.kind,
            "source": model.source,
            "description": model.description,
            "terms": model.terms,
            "space": str(model.space),
            "parts": list(model.parts),
            "default": services.deps.models is not None
            and model.version == services.deps.models.default_version,
        }
        reason = matchers.servable(model.version)
        if reason is None:
            entry |= {"serves_searches": True, "calibration": _calibration(
                services, matchers.for_model(model.version)
            )}  # fmt: skip
        else:
            entry |= {"serves_searches": False, "why_not": reason}
        out.append(entry)
    return out


MODELS_OFF_BY_DEFAULT = (
    "Attributes from converted face models are off unless the operator names the models in "
    "FACEGATE_ATTRIBUTE_MODELS. Their training data carry research or non-commercial terms "
    "(IMDB-WIKI, VGGFace2, FER2013): an operator who enables them accepts those terms. Their "
    "error rates differ by demographic group, as Gender Shades found for commercial gender "
    "classifiers (up to 34.7% error for darker-skinned women in 2018): the measured rates per "
    "group are published with each attribute (docs/attributes.md)."
)


def _face_models(services: Services) -> dict[str, Any]:
    enabled = services.settings.engine.face_models.enabled
    backs: dict[str, list[str]] = {}
    for spec in ESTIMATORS:
        if spec.model:
            backs.setdefault(spec.model, []).append(spec.attribute.value)
    return {
        "setting": "FACEGATE_ATTRIBUTE_MODELS",
        "default": [],
        "enabled": sorted(enabled),
        "why_off_by_default": MODELS_OFF_BY_DEFAULT,
        "models": [
            {
                "name": name,
                "attributes": attributes,
                "enabled": name in enabled,
                "task": model_spec(name).task,
                "upstream": model_spec(name).upstream,
                "training_data": model_spec(name).training_data,
            }
            for name, attributes in sorted(backs.items())
        ],
    }


def _attributes(services: Services) -> dict[str, Any]:
    engine = services.settings.engine
    available = catalogue(engine.attributes, engine.face_models)
    estimated = {a.attribute.value for a in available}
    return {
        "estimated": [
            {
                "attribute": a.attribute.value,
                "member": ATTRIBUTE_MEMBERS[a.attribute.value],
                "version": a.version,
                "method": a.method,
                "measured": dict(a.measured),
            }
            for a in available
        ],
        "not_estimated": [a for a in FACE_ATTRIBUTES if a not in estimated],
        "note": "Attributes are computed per request, only when asked for, and never stored; "
        "what is not estimated is left out of the answer. Policies may refuse or drop "
        "attributes (the policies below).",
        "face_models": _face_models(services),
    }


def transparency_document(services: Services) -> dict[str, Any]:
    """The transparency document of the running service (see the module docstring)."""
    status = services.gate_status()
    audit = services.active_audit()
    packs = services.policy.packs
    return {
        "service": {
            "name": "facegate",
            "version": __version__,
            "generated_at": iso(services.clock()),
        },
        "model": _calibration(services),
        "descriptor_models": _descriptor_models(services),
        "deployment_gate": {
            "enforced_by": [p for p in packs if p in GATE_PACKS],
            "bounds": services.settings.gate.to_json(),
            "status": status.to_json(),
            "audit": None
            if audit is None
            else {
                "audit_id": audit.audit_id,
                "registered_at": iso(audit.registered_at),
                "dataset": audit.dataset,
                "report_sha256": audit.report_sha256,
            },
        },
        "policy": {
            "packs": list(packs),
            "policies": [
                {
                    "id": p.policy_id,
                    "pack": p.pack,
                    "effect": p.effect,
                    "reason": p.reason,
                    "source": p.source,
                }
                for p in services.policy.policies()
            ],
        },
        "attributes": _attributes(services),
    }


# --- HTML ----------------------------------------------------------------------------------------

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
    if model.get("held_out"):
        parts += _held_out_section(model["held_out"])
    return parts


def _held_out_section(held: Mapping[str, Any]) -> list[str]:
    """The leave-one-population-out check of this mapping (facegate.bias.holdout.summary)."""
    limit = held["ratio_limit"]

    def rows(worst: Mapping[str, Any]) -> list[list[str]]:
        return [
            [
                _e(level),
                _e(f"{w['ratio']:.2f}x [{w['ci95_ratio'][0]:.2f}, {w['ci95_ratio'][1]:.2f}]"),
                _e(f"{w['population']} ({w['pairs']:,} pairs)"),
                "yes" if w["within_limit"] else "<strong>no</strong>",
            ]
            for level, w in worst.items()
        ]

    head = ["Similarity", "worst measured / promised FMR", "population", f"within {limit:g}x"]
    kept = all(w["within_limit"] for w in held["worst_held_out"].values())
    parts = [
        "<h3>Checked where it was not fitted</h3>",
        f"<p>The mapping's method was refitted with each of {len(held['populations'])}"
        " populations (data sets and race x gender groups) left out in turn, and the false"
        " match rate measured on the population left out"
        f" (<code>{_e(held['command'])}</code>, {_e(held['checked'])}). The worst ratio of"
        " measured to promised rate at each Similarity, with its 95% Wilson interval:</p>",
        _table("Leave one population out", head, rows(held["worst_held_out"])),
    ]
    if not kept:
        parts.append(
            "<p><strong>The promise is not kept within"
            f" {limit:g}x for every population</strong>: for people unlike the data it was"
            " fitted on, expect up to the worst ratio above times the promised false match"
            " rate. A 1:N search also estimates its false candidates from the collection's"
            " own scores.</p>"
        )
    remedy = held.get("worst_population_fit") or {}
    fnmr, pooled = remedy.get("lfw_fnmr"), remedy.get("pooled_lfw_fnmr")
    if fnmr and pooled and remedy.get("worst_held_out"):
        cost = ", ".join(
            f"Similarity {level}: {pooled[level]:.1%} -> {fnmr[level]:.1%}" for level in fnmr
        )
        parts.append(
            "<p>A mapping fitted to the worst population instead (not shipped) gives"
            " worst ratios "
            + _e(", ".join(f"{w['ratio']:.2f}x" for w in remedy["worst_held_out"].values()))
            + ", at this cost in false non-matches on LFW's"
            f" {remedy['lfw_mated_pairs']:,} mated pairs (pooled fit -> worst-population fit):"
            f" {_e(cost)}.</p>"
        )
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
