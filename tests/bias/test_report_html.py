"""HTML bias reports from small hand-built JSON report dicts, one per kind."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest

from facegate.bias.datasets import Pair
from facegate.bias.report_html import render_html
from facegate.bias.verification import CROSS_GROUP, ScoredPairs, curves_json, sweep_json

HOSTILE = '<script>alert("x")</script>'
EVIL = '<script>alert("x")</script> & <b>co</b>'
EVIL_ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;co&lt;/b&gt;"


def with_evil(report: dict[str, Any], *names: str) -> dict[str, Any]:
    """``report`` with every string equal to one of ``names`` (a group, a label, a path)
    replaced by markup: the page must show it as text."""
    text = json.dumps(report)
    for name in names:
        assert json.dumps(name) in text, name
        text = text.replace(json.dumps(name), json.dumps(EVIL))
    out: dict[str, Any] = json.loads(text)
    return out


def assert_escaped(page: str) -> None:
    """No markup from the report in ``page``: the evil text is there, escaped."""
    check_page(page)
    assert EVIL_ESCAPED in page
    assert "<b>co" not in page


def header(kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "created": "2026-11-23T10:00:00+00:00",
        "command": f"facegate bias {kind} --group-by gender",
        "model_version": "dlib-resnet-v1",
        "similarity_version": "test-map-v9",
        "group_by": ["gender"],
    }


def rate_row(group: str, fm: int, n_non: int, fnm: int, n_mat: int, **extra: Any) -> dict[str, Any]:
    return {
        "group": group,
        "false_matches": fm,
        "nonmated_pairs": n_non,
        "fmr": fm / n_non if n_non else None,
        "fmr_ci": [0.001, 0.0123] if n_non else None,
        "false_non_matches": fnm,
        "mated_pairs": n_mat,
        "fnmr": fnm / n_mat if n_mat else None,
        "fnmr_ci": [0.02, 0.0456] if n_mat else None,
    } | extra


def verification_report(kind: str = "verification") -> dict[str, Any]:
    groups = [
        rate_row("female", 5, 1000, 30, 1000, fmr_measurable=True, fnmr_measurable=True),
        rate_row(HOSTILE, 0, 7, 1, 3, fmr_measurable=False, fnmr_measurable=False),
    ]
    summary = {
        "max_group": "female", "max": 0.005, "min_group": "female", "min": 0.005,
        "difference": 0.0, "ratio": 1.0, "max_geomean": 1.0, "max_geomean_ci": [1.0, 1.0],
        "zero_groups": [], "too_small": [HOSTILE],
    }  # fmt: skip
    edges = [round(0.02 * i, 2) for i in range(61)]
    mated = [0] * 60
    mated[20] = 1000
    nonmated = [0] * 60
    nonmated[40] = 1000
    return header(kind) | {
        "dataset": "lfw-view2",
        "descriptors": "3 images: faces 3",
        "pairs": {"total": 2010, "lfw_view2": 2010, "extra_impostors": 0},
        "unscored_pairs": {"female": {"mated": 2, "nonmated": 0}},
        "thresholds": [
            {
                "similarity_pct": 80.0,
                "distance": 0.5464,
                "cross_group": None,
                "overall": rate_row("overall", 5, 1007, 31, 1003),
                "groups": groups,
                "fmr": summary,
                "fnmr": summary,
                "fdr": 0.9876,
                "min_pairs": 100,
            }
        ],
        "det": {
            "thresholds": [0.2, 0.5, 0.9],
            "similarity_pct": [99.9, 85.0, 10.0],
            "groups": {
                "female": {
                    "mated_pairs": 1000,
                    "nonmated_pairs": 1000,
                    "fmr": [0.0, 0.005, 1.0],
                    "fnmr": [1.0, 0.03, 0.0],
                },
                HOSTILE: {
                    "mated_pairs": 3,
                    "nonmated_pairs": 7,
                    "fmr": [0.0, 0.0, 1.0],
                    "fnmr": [1.0, 0.3, 0.0],
                },
                "overall": {
                    "mated_pairs": 1003,
                    "nonmated_pairs": 1007,
                    "fmr": [0.0, 0.005, 1.0],
                    "fnmr": [1.0, 0.031, 0.0],
                },
            },
        },
        "histograms": {
            "bin_edges": edges,
            "groups": {
                "female": {
                    "mated": mated,
                    "nonmated": nonmated,
                    "mated_above": 0,
                    "nonmated_above": 3,
                },
            },
        },
    }


def check_page(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        ET.fromstring(svg)


def test_verification_page_numbers_and_too_small() -> None:
    page = render_html(verification_report())
    check_page(page)
    assert "Verification accuracy by group" in page
    assert "facegate bias verification --group-by gender" in page
    assert "test-map-v9" in page
    assert "2026-11-23T10:00:00+00:00" in page
    assert "30/1000" in page  # female FNMR counts
    assert "3.000%" in page  # female FNMR
    assert "0.500%" in page  # female FMR
    assert "2.000% \u2013 4.560%" in page  # FNMR Wilson interval
    assert "too small: 3 pairs" in page  # the small group's mated pairs
    assert "too small: 7 pairs" in page
    assert "&lt;script&gt;" in page  # the hostile group name, escaped
    assert "FDR (alpha 0.5): 0.988" in page
    assert "DET curves per group" in page
    assert "Wilson" in page
    assert "bootstrap" in page
    assert "Max/GeoMean" in page
    assert "above 1.2" in page


def test_impostors_page_lists_top_pairs_without_fnmr() -> None:
    report = verification_report("impostors") | {
        "review_note": "Review the pairs.",
        "top_pairs": [
            {"left": "/d/a <1>.jpg", "right": "/d/b.jpg", "group": "female",
             "distance": 0.1234, "similarity_pct": 99.9412}
        ],
    }  # fmt: skip
    page = render_html(report)
    check_page(page)
    assert "FMR per group against Similarity" in page
    assert "DET curves" not in page
    assert "FNMR 95% CI" not in page
    assert "99.9412" in page
    assert "/d/a &lt;1&gt;.jpg" in page
    assert "Review the pairs." in page


def lineup_report() -> dict[str, Any]:
    group = {
        "group": "male", "probes": 2, "no_face": 0, "declared_present": 0, "searched": 2,
        "with_false_match": 1, "false_match_share": 0.5, "interval": [0.0945, 0.9055],
        "declared_found": 0,
    }  # fmt: skip
    empty = group | {
        "group": "female", "probes": 1, "no_face": 1, "searched": 0, "with_false_match": 0,
        "false_match_share": None, "interval": None,
    }  # fmt: skip
    return header("lineup") | {
        "probes": {"dataset": "probes.csv", "descriptors": "d"},
        "gallery": {"dataset": "gallery.csv", "descriptors": "d"},
        "declared_true": {},
        "thresholds": [
            {
                "similarity_pct": 80.0,
                "distance": 0.5464,
                "groups": [empty, group],
                "matches": [
                    {"probe": "/p/biden.jpg", "gallery": "/g/obama2.jpg",
                     "similarity_pct": 81.25, "distance": 0.52, "declared_true": False}
                ],
            }
        ],
    }  # fmt: skip


def test_lineup_page() -> None:
    report = lineup_report()
    page = render_html(report)
    check_page(page)
    assert "50.000%" in page
    assert "9.450% \u2013 90.550%" in page
    assert "too small: 0 probes searched" in page
    assert "/p/biden.jpg" in page
    assert "81.2500" in page
    assert "<img" not in page


def synthetic_sweep() -> ScoredPairs:
    """Two groups, 200 impostor pairs each; group "b" matches much more often when loose."""
    d_a = np.linspace(0.5, 1.0, 200)
    d_b = np.linspace(0.3, 1.0, 200)
    return ScoredPairs(
        pairs=tuple(Pair(0, 1, mated=False) for _ in range(400)),
        distances=np.concatenate([d_a, d_b]),
        mated=np.zeros(400, dtype=np.bool_),
        groups=np.array(["a"] * 200 + ["b"] * 200),
        clusters=np.array([str(i) for i in range(400)]),
    )


def test_sweep_page_from_sweep_json() -> None:
    report = header("sweep") | {"dataset": "synthetic", "pairs": {"total": 400}}
    report |= sweep_json(synthetic_sweep(), [50.0, 70.0, 90.0, 99.0], min_pairs=100)
    fmr = report["balance"]["fmr"]
    assert report["balance"]["fnmr"] is None
    assert fmr["checks"][0]["similarity_pct"] == 50.0
    page = render_html(report)
    check_page(page)
    assert "Threshold sweep" in page
    assert "Fisher" in page
    assert "alpha 0.05" in page
    assert "Bonferroni" in page
    assert "FNMR across thresholds" not in page
    if fmr["lowest_balanced_similarity_pct"] is not None:
        assert f"lowest balanced Similarity {fmr['lowest_balanced_similarity_pct']:g}" in page
    first_bad = fmr["first_imbalanced_similarity_pct"]
    assert first_bad is not None  # 0.3-0.5 distances exist only in "b"
    assert f"first imbalance at Similarity {first_bad:g}" in page
    assert "a (200 pairs)" in page


def test_every_text_from_the_report_is_escaped() -> None:
    """Group names, image paths, data set names, the command and review notes are text on every
    kind of pairs page, in tables, headings, summaries and chart labels."""
    verification = with_evil(verification_report(), "female", "lfw-view2", "test-map-v9")
    assert_escaped(render_html(verification))
    impostors = verification_report("impostors") | {
        "review_note": "note",
        "top_pairs": [{"left": "/d/a.jpg", "right": "/d/b.jpg", "group": "female",
                       "distance": 0.1234, "similarity_pct": 99.9412}],
    }  # fmt: skip
    assert_escaped(render_html(with_evil(impostors, "female", "/d/a.jpg", "note")))
    lineup = with_evil(lineup_report(), "male", "/p/biden.jpg", "gallery.csv")
    assert_escaped(render_html(lineup))
    sweep = header("sweep") | {"dataset": "synthetic", "pairs": {"total": 400}}
    sweep |= sweep_json(synthetic_sweep(), [50.0, 90.0], min_pairs=100)
    assert_escaped(render_html(with_evil(sweep, "b", "synthetic"), rendered_at=EVIL))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not a bias report"):
        render_html({"command": "x"})
    with pytest.raises(ValueError, match="not a bias report"):
        render_html({"kind": "mugshots"})


def test_curves_json_feeds_the_plots() -> None:
    distances = np.array([0.31, 0.45, 0.75, 0.95, 1.5, np.nan, 0.5])
    mated = np.array([True, True, False, False, False, True, False])
    groups = np.array(["a", "a", "a", "a", "a", "a", CROSS_GROUP])
    scored = ScoredPairs(
        pairs=tuple(Pair(0, 1, mated=bool(m)) for m in mated),
        distances=distances,
        mated=mated,
        groups=groups,
        clusters=np.array(["s"] * 7),
    )
    out = curves_json(scored, points=5)
    det = out["det"]
    assert det["thresholds"][0] == 0.31
    assert det["thresholds"][-1] == 1.5  # unscored and cross-group pairs are left out
    a = det["groups"]["a"]
    assert (a["mated_pairs"], a["nonmated_pairs"]) == (2, 3)
    assert a["fnmr"][0] == 0.5
    assert a["fmr"][0] == 0.0
    assert a["fmr"][-1] == 1.0
    hist = out["histograms"]["groups"]["a"]
    assert hist["mated"][15] == 1  # 0.31 in [0.30, 0.32)
    assert hist["mated"][22] == 1  # 0.45 in [0.44, 0.46)
    assert sum(hist["nonmated"]) == 2
    assert hist["nonmated_above"] == 1  # 1.5 > 1.2
    assert set(out["histograms"]["groups"]) == {"a", "overall"}
