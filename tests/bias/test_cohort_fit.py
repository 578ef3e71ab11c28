"""Fitting the cohort: every centroid averages at least 20 faces; the fit is reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facegate.bias.cohort_fit import (
    cohort_json,
    cohort_sizes,
    fit_cohort,
    fit_parts_cohort,
    kmeans,
)
from facegate.engine.cohort import MIN_CENTROID_FACES, CohortNormaliser
from facegate.engine.matching import PartsCohort
from facegate.vectorspace import parse_space


def _faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, 16))
    return centres[rng.integers(0, 8, n)] + rng.normal(scale=0.2, size=(n, 16))


def test_kmeans_dissolves_clusters_below_the_minimum() -> None:
    x = _faces(400)
    centroids, labels = kmeans(x, 40)  # 40 asked: at most 400 // 20 survive
    sizes = np.bincount(labels, minlength=len(centroids))
    assert sizes.min() >= MIN_CENTROID_FACES
    assert len(centroids) <= 20
    assert np.allclose(centroids[0], x[labels == 0].mean(axis=0))
    with pytest.raises(ValueError, match="at least 20 faces"):
        kmeans(x[:19], 1)


def test_fit_cohort_is_reproducible_and_reloads_identically() -> None:
    cohort, reference = _faces(300, 1), _faces(200, 2)
    first = fit_cohort(cohort, reference, target_size=30)
    second = fit_cohort(cohort, reference, target_size=30)
    assert first.version == second.version
    assert CohortNormaliser.from_json(first.to_json()).version == first.version
    stats = first.stats(reference)
    assert first.offset == pytest.approx(float(np.median(stats)), abs=1e-6)
    assert np.mean(stats <= first.low) <= 0.02
    assert np.mean(stats >= first.high) <= 0.02
    assert sum(first.sizes) == len(cohort)


def test_a_fused_models_cohort_is_one_per_part_and_ships_as_the_engine_reads_it() -> None:
    space = parse_space("euclidean:16+cosine:16")
    cohort = np.hstack([_faces(300, 3), _faces(300, 4)])
    reference = np.hstack([_faces(200, 5), _faces(200, 6)])
    weights = (0.6, 0.4)
    fused = fit_parts_cohort(cohort, reference, space, weights, target_size=30)
    euclid = fit_cohort(cohort[:, :16], reference[:, :16], target_size=30)
    cosine = fit_cohort(cohort[:, 16:], reference[:, 16:], target_size=30, metric="cosine")
    expected = 0.6 * euclid.stats(reference[:, :16]) + 0.4 * cosine.stats(reference[:, 16:])
    assert fused.stats(reference) == pytest.approx(expected)
    assert fused.offset == pytest.approx(0.6 * euclid.offset + 0.4 * cosine.offset)
    shipped = PartsCohort.from_json(json.loads(json.dumps(cohort_json(fused))), weights)
    assert shipped.version == fused.version
    assert np.array_equal(shipped.stats(reference), fused.stats(reference))
    assert cohort_sizes(fused) == euclid.sizes + cosine.sizes
