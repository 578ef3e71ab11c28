"""The transparency page's HTML (templates/transparency.html): escaped, self-contained, honest about
an uncalibrated mapping, and the whole document of a real service."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from facegate.config import Settings
from facegate.engine.matching import default_matcher
from facegate.services import Services
from facegate.transparency import render_html, transparency_document


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


class _Page(HTMLParser):
    """Well-formedness (every non-void element closed in order), table captions, cell texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.captions: list[str] = []
        self.cells: list[str] = []
        self.codes: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag != "meta":
            self.stack.append(tag)
            if tag in ("caption", "td", "code"):
                {"caption": self.captions, "td": self.cells, "code": self.codes}[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1:] == [tag], (tag, self.stack[-3:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        for tag, texts in (("caption", self.captions), ("td", self.cells), ("code", self.codes)):
            if tag in self.stack:
                texts[-1] += data


def test_the_page_of_a_real_service_shows_its_whole_document(tmp_path: Path) -> None:
    """The template on the document of a real service graph (shipped calibrations, descriptor
    models, policy packs): well formed, one table per section of the document."""
    packs = ("aws-public-safety-terms", "eu-ai-act-art5", "deployment-gate")
    settings = Settings(data_dir=tmp_path / "data", policy_packs=packs, engine_workers=1)
    services = Services.open(settings, start_engine=False)
    try:
        doc = transparency_document(services)
    finally:
        services.close()
    page = _Page()
    page.feed(render_html(doc))
    page.close()
    assert page.stack == []
    assert not {"script", "link", "img", "iframe"} & set(page.tags)
    table = doc["model"]["table"]
    datasets = table[0]["datasets"]
    group_tables = [
        f"{d}: {kind.upper()} by {grouping}"
        for d in datasets
        for grouping, first in datasets[d]["groups"].items()
        for kind in ("fmr", "fnmr")
        if kind in first
    ]
    assert group_tables
    held_out = doc["model"].get("held_out")
    assert held_out  # the shipped mapping's leave-one-population-out check is published
    promise = doc["model"]["promise"]  # what governance relies on: the shipped promise curve
    assert promise["curve"] == default_matcher().similarity.promise.version  # type: ignore[attr-defined]
    assert [r["similarity_pct"] for r in promise["table"]] == [80.0, 90.0, 95.0, 99.0, 99.9]
    assert all(r["promised_fmr"] >= r["nominal_fmr"] for r in promise["table"])
    worst = promise["held_out"]["worst"]
    cost = promise["cost"]["size_aware"]
    assert page.captions == [
        "Error rates at each threshold",
        *group_tables,
        "Leave one population out",
        "Promised false match rate",
        "Promise held out",
        "What it costs: one expected false candidate per search (LFW's "
        f"{promise['cost']['lfw_mated_pairs']:,} mated pairs)",
        "Descriptor models",
        "Policies",
        "Estimated",
        "Face models that back attributes",
    ]
    assert page.tags.count("tr") == (
        1 + len(table)  # the error rates
        + sum(len(first[k]) + 2 for d in datasets for first in datasets[d]["groups"].values()
              for k in ("fmr", "fnmr") if k in first)  # groups, header, Max/GeoMean
        + 1 + len(held_out["worst_held_out"])
        + 1 + len(promise["table"]) + 1 + len(worst) + 1 + len(cost)
        + 1 + len(doc["descriptor_models"])
        + 1 + len(doc["policy"]["policies"])
        + 1 + len(doc["attributes"]["estimated"])
        + 1 + len(doc["attributes"]["face_models"]["models"])
    )  # fmt: skip
    assert {p["id"] for p in doc["policy"]["policies"]} <= set(page.cells)
    assert {m["version"] for m in doc["descriptor_models"]} <= set(page.codes)
    assert f"{table[0]['similarity_pct']:g}" in page.cells
    assert promise["curve"] in page.codes
    assert f"{worst['99']['ratio']:.2f}x [" in " ".join(page.cells)
