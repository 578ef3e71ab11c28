"""The raw-vs-normalised comparison on synthetic descriptors with a planted crowded group."""

from __future__ import annotations

import numpy as np

from facegate.bias.calibration import Source
from facegate.bias.cohort_fit import fit_cohort
from facegate.bias.normalisation import LfwPairs, compare, render
from facegate.bias.report_html import render_html
from facegate.engine.matching import Matcher, raw_matcher
from facegate.engine.similarity import CalibratedSimilarity
from tests.bias.test_report_html import assert_escaped, with_evil

DIM = 128
RNG = np.random.default_rng(11)


def _people(centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    return centre + RNG.normal(scale=spread / np.sqrt(DIM), size=(n, DIM))


def _world() -> tuple[np.ndarray, Source, LfwPairs, np.ndarray]:
    """Group "tight": strangers about 0.2 apart; "loose": 0.7. Mated pairs: about 0.18 apart."""
    tight_c, loose_c = np.zeros(DIM), np.zeros(DIM)
    tight_c[0], loose_c[1] = 1.0, 1.0
    tight, loose = _people(tight_c, 240, 0.14), _people(loose_c, 240, 0.5)
    cohort = np.vstack([tight[:120], loose[:120]])
    held = Source(
        "held",
        np.vstack([tight[120:], loose[120:]]).astype(np.float32),
        None,
        {"group": ("tight",) * 120 + ("loose",) * 120},
    )
    people = np.vstack([_people(loose_c, 100, 0.5), _people(tight_c, 100, 0.14)])
    twins = people + RNG.normal(scale=0.18 / np.sqrt(DIM), size=people.shape)
    vectors = np.vstack([people, twins])
    n = len(people)
    left = np.concatenate([np.arange(n), np.arange(n)])
    right = np.concatenate([np.arange(n) + n, (np.arange(n) + 1) % n])
    mated = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    lfw = LfwPairs(vectors, left, right, mated, np.arange(2 * n) % 10)
    return cohort, held, lfw, _people(loose_c, 50, 0.5)


def test_normalisation_narrows_the_gap_between_a_crowded_and_a_sparse_group() -> None:
    cohort, held, lfw, probes = _world()
    normaliser = fit_cohort(cohort, held.vectors, target_size=20)
    doc = compare(
        {"raw": raw_matcher(), "normalised": Matcher(CalibratedSimilarity(), normaliser)},
        lfw,
        held,
        probes,
        grouping="group",
    )
    raw, norm = doc["scorers"]["raw"]["equal_fnmr"], doc["scorers"]["normalised"]["equal_fnmr"]
    assert raw["lfw_fnmr"] == norm["lfw_fnmr"] == 0.05
    assert raw["worst_group"] == "tight"
    ratio = raw["groups"]["tight"]["rate"] / max(raw["groups"]["loose"]["rate"], 1e-9)
    norm_ratio = norm["groups"]["tight"]["rate"] / max(norm["groups"]["loose"]["rate"], 1e-9)
    assert norm_ratio < ratio
    for entry in doc["scorers"].values():
        assert 0.5 <= entry["lfw_accuracy"]["mean"] <= 1.0
        assert len(entry["lineup"]["rows"]) == 3
    lines = render(doc)
    assert lines[0].startswith("## FMR per group group at LFW FNMR 5%")
    assert any(line.startswith("| tight |") for line in lines)
    doc |= {"command": "facegate bias normalisation", "created": "2026-11-23T00:00:00+00:00"}
    html = render_html(doc)
    assert "<svg" in html
    assert "Raw distance and normalised score, side by side" in html
    assert "T: tight" in html  # the chart's short labels are explained in the caption
    assert_escaped(render_html(with_evil(doc, "tight")))  # a group name is text
