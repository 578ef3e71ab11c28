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
resources, every text escaped) from the Jinja2 template ``facegate/templates/transparency.html``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    promise_document,
    scale_fmr,
)
from facegate.operations import ATTRIBUTE_MEMBERS, FACE_ATTRIBUTES
from facegate.services import Services
from facegate.templating import environment

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
        out["promise"] = _promise(similarity)
    return out


PROMISE_LEVELS = (80.0, 90.0, 95.0, 99.0, 99.9)
"""The Similarities whose promised rate the page lists."""


def _promise(similarity: CalibratedSimilarity) -> dict[str, Any]:
    """What governance relies on: the promised per-pair false match rate at each published
    Similarity (the promise curve's, or the nominal scale's when none ships), and where a curve
    ships its version, rule, held-out check, cost and provenance (:mod:`facegate.engine.
    promise`)."""
    curve = similarity.promise
    rows = [
        {
            "similarity_pct": s,
            "nominal_fmr": scale_fmr(s),
            "promised_fmr": similarity.fmr_at(s),
        }
        for s in PROMISE_LEVELS
    ]
    if curve is None:
        return {"curve": None, "table": rows}
    doc = promise_document(similarity.model_version, similarity.variant, similarity.directory)
    assert doc is not None  # the curve was read from it
    return {
        "curve": curve.version,
        "rule": doc.get("rule"),
        "table": rows,
        "held_out": doc.get("held_out"),
        "cost": doc.get("cost"),
        "provenance": {
            k: v for k, v in (doc.get("provenance") or {}).items() if k in ("command", "checked")
        },
    }


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
    "group are published with each attribute (docs/attributes.md). MediaPipe Iris "
    "(EyeDirection) is Apache-2.0 and off for another reason: EyeDirection was checked only "
    "against portraits looking into the camera, with no gaze-labelled data. Without faceres, "
    "AgeRange and Gender come from logistic models over the dlib descriptor fitted on FairFace "
    "(CC BY 4.0), measured per group on the half they were not fitted on."
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


# --- HTML (templates/transparency.html) ---------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _at99(calibration: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The row of a calibration's table at Similarity 99, if it has one."""
    return next((r for r in calibration.get("table", []) if r["similarity_pct"] == 99.0), None)


def _by_dataset(datasets: Sequence[str], kind: str) -> list[str]:
    return [f"{d} {kind}" for d in datasets]


def _thresholds(table: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"Similarity {r['similarity_pct']:g}" for r in table]


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


_HELPERS = {f.__name__[1:]: f for f in (_held_out, _ratio, _at99, _by_dataset, _thresholds)}
"""The text helpers the template calls (held_out, ratio, at99, by_dataset, thresholds)."""


def render_html(doc: Mapping[str, Any]) -> str:
    """One self-contained HTML page of :func:`transparency_document`'s output
    (``templates/transparency.html``: every value escaped)."""
    template = environment("facegate").get_template("transparency.html")
    return template.render(doc=doc, **_HELPERS)
