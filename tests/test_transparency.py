"""The transparency page's HTML: escaped, self-contained, honest about an uncalibrated mapping."""

from __future__ import annotations

from typing import Any

from facegate.transparency import render_html


def _doc(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "service": {"version": "9.9", "generated_at": "2026-11-23T00:00:00Z"},
        "model": model,
        "deployment_gate": {
            "enforced_by": [],
            "bounds": {"threshold_pct": 99.0, "max_fmr_ratio": 10.0, "max_fnmr": 0.5},
            "status": {"registered": False, "within_bounds": False, "reasons": ["no <audit>"]},
            "audit": None,
        },
        "policy": {
            "packs": ["base"],
            "policies": [
                {
                    "id": "p<1>",
                    "pack": "base",
                    "effect": "forbid",
                    "reason": "<script>x",
                    "source": "&",
                }
            ],
        },
    }


def _rate(rate: float) -> dict[str, Any]:
    return {
        "rate": rate,
        "ci_low": rate / 2,
        "ci_high": rate * 2,
        "errors": 3,
        "pairs": 1000,
        "too_small": False,
    }


def test_uncalibrated_mapping_says_so_and_everything_is_escaped() -> None:
    page = render_html(
        _doc({"model_version": "m", "similarity_version": "v<0>", "calibrated": False})
    )
    assert "not calibrated" in page
    assert "<script>x" not in page
    assert "&lt;script&gt;x" in page
    assert "v&lt;0&gt;" in page
    assert "no &lt;audit&gt;" in page
    assert "searches are not gated" in page


def test_calibrated_table_and_group_rows() -> None:
    group = {
        "fmr": {"A x f": _rate(0.002), "B x m": {**_rate(0.0), "too_small": True}},
        "fmr_max_geomean": 1.0,
    }
    row = {
        "similarity_pct": 99.0,
        "distance": 0.39,
        "target_fmr": 1e-4,
        "pooled_fmr": 9e-5,
        "datasets": {
            "ff": {"fmr": _rate(1.7e-4), "fnmr": None, "groups": {"race x gender": group}}
        },
    }
    model = {
        "model_version": "m",
        "similarity_version": "m.fmr-1",
        "calibrated": True,
        "scale": {"formula": "S >= 90: FMR = (100 - S) / 10000", "weighting": "equal"},
        "fitted": {"command": "facegate bias calibrate", "date": "2026-11-23"},
        "table": [row],
    }
    page = render_html(_doc(model))
    assert "1.0e-04" in page  # promised
    assert "9.00e-05" in page  # measured
    assert "ff: FMR by race x gender" in page
    assert "A x f" in page
    assert "too small" in page
    assert "not calibrated" not in page


def _held_out(ratio80: float) -> dict[str, Any]:
    def worst(ratio: float, population: str) -> dict[str, Any]:
        return {
            "ratio": ratio,
            "ci95_ratio": [ratio * 0.9, ratio * 1.1],
            "population": population,
            "pairs": 60031,
            "within_limit": ratio <= 2.0,
        }

    return {
        "similarity_version": "m.fmr-1",
        "checked": "2026-12-07",
        "command": "facegate bias holdout",
        "populations": ["a", "b", "<c>"],
        "ratio_limit": 2.0,
        "worst_held_out": {"80": worst(ratio80, "<c>"), "99": worst(1.5, "a")},
        "worst_population_fit": {
            "worst_held_out": {"80": worst(1.1, "a"), "99": worst(1.2, "a")},
            "lfw_fnmr": {"80": 0.065, "99": 0.81},
            "pooled_lfw_fnmr": {"80": 0.03, "99": 0.241},
            "lfw_mated_pairs": 8101,
            "shipped": False,
        },
    }


def test_held_out_check_is_published_with_its_verdict() -> None:
    model = {
        "model_version": "m",
        "similarity_version": "m.fmr-1",
        "calibrated": True,
        "scale": {"formula": "f", "weighting": "equal"},
        "fitted": {"command": "facegate bias calibrate", "date": "2026-11-23"},
        "table": [],
    }
    assert "Checked where it was not fitted" not in render_html(_doc(model))
    model["table"] = [
        {
            "similarity_pct": 99.0,
            "distance": 0.39,
            "target_fmr": 1e-4,
            "pooled_fmr": 9e-5,
            "datasets": {"ff": {"fmr": _rate(1.7e-4), "fnmr": None, "groups": {}}},
        }
    ]
    broken = render_html(_doc({**model, "held_out": _held_out(4.46)}))
    assert "Checked where it was not fitted" in broken
    assert "each of 3 populations" in broken
    assert "4.46x [4.01, 4.91]" in broken
    assert "&lt;c&gt; (60,031 pairs)" in broken
    assert "<td><strong>no</strong></td>" in broken
    assert "not kept within 2x" in broken
    assert "Similarity 99: 24.1% -&gt; 81.0%" in broken
    kept = render_html(_doc({**model, "held_out": _held_out(1.9)}))
    assert "<td><strong>no</strong></td>" not in kept
    assert "not kept within" not in kept


def test_attributes_section_says_which_face_models_are_enabled_and_why_off_by_default() -> None:
    doc = _doc({"model_version": "m", "similarity_version": "v", "calibrated": False})
    doc["attributes"] = {
        "estimated": [
            {
                "attribute": "GENDER",
                "member": "Gender",
                "version": "faceres-87f6a7dc.gender.t0.6",
                "method": "P(man) <b>",
                "measured": {"summary": "FairFace: worst group <i>x</i> 20% error"},
            }
        ],
        "not_estimated": ["BEARD"],
        "note": "computed per request",
        "face_models": {
            "setting": "FACEGATE_ATTRIBUTE_MODELS",
            "default": [],
            "enabled": ["faceres"],
            "why_off_by_default": "research terms & 34.7%",
            "models": [
                {
                    "name": "faceres",
                    "attributes": ["AGE_RANGE", "GENDER"],
                    "enabled": True,
                    "task": "descriptor",
                    "upstream": "https://github.com/av-savchenko/HSE_FaceRec_tf",
                    "training_data": "IMDB-WIKI <faces>",
                }
            ],
        },
    }
    page = render_html(doc)
    assert "Enabled: <strong>faceres</strong>" in page
    assert "research terms &amp; 34.7%" in page
    assert "FairFace: worst group &lt;i&gt;x&lt;/i&gt; 20% error" in page
    assert "IMDB-WIKI &lt;faces&gt;" in page
    assert "https://" not in page  # self-contained: no links out
    doc["attributes"]["face_models"]["enabled"] = []
    assert "Enabled: <strong>none (the default)</strong>" in render_html(doc)
