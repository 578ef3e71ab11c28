"""Fit the reference cohort of :mod:`facegate.engine.cohort` from descriptors.

Method: k-means (k-means++ seeding, Lloyd iterations, a fixed seed: the same descriptors always
give the same cohort) with about ``target_size`` faces per cluster; clusters smaller than
:data:`~facegate.engine.cohort.MIN_CENTROID_FACES` are dissolved and their faces reassigned to
the nearest remaining centroid until every cluster is large enough, so every shipped centroid
averages at least that many people. The scoring constants come from *reference* faces that are
not in the cohort (a cohort member sits close to its own centroid, so its statistic is biased
low): ``offset`` is their median statistic and ``[low, high]`` their 1st-99th percentile range.

Choosing parameters: ``nearest`` (centroids averaged per face) trades locality against noise;
1-3 behave alike on LFW and FairFace (docs/normalisation.md); 2 is the default. ``target_size``
sets the number of centroids (cohort faces / target_size); at least 20 by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.engine.cohort import (
    MIN_CENTROID_FACES,
    CohortNormaliser,
    FloatArray,
    squared_distances,
)
from facegate.engine.matching import PartsCohort
from facegate.vectorspace import VectorSpace

DEFAULT_NEAREST = 2
DEFAULT_TARGET_SIZE = 40
CLIP_PERCENTILES = (1.0, 99.0)


def kmeans(
    vectors: npt.ArrayLike,
    clusters: int,
    *,
    min_size: int = MIN_CENTROID_FACES,
    iterations: int = 30,
    seed: int = 0,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """(centroids, label per vector), every cluster holding at least ``min_size`` vectors.

    Raises ``ValueError`` when there are fewer than ``min_size`` vectors.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if len(x) < min_size:
        raise ValueError(f"a cohort needs at least {min_size} faces, got {len(x)}")
    clusters = max(1, min(clusters, len(x) // min_size))
    rng = np.random.default_rng(seed)
    centroids = x[rng.choice(len(x), 1)]
    for _ in range(clusters - 1):  # k-means++: far-away faces are likelier seeds
        nearest = squared_distances(x, centroids).min(axis=1)
        centroids = np.vstack([centroids, x[rng.choice(len(x), p=nearest / nearest.sum())]])
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        labels = squared_distances(x, centroids).argmin(axis=1)
        sizes = np.bincount(labels, minlength=len(centroids))
        centroids = np.array([x[labels == c].mean(axis=0) for c in np.flatnonzero(sizes)])
    while True:  # dissolve the smallest undersized cluster until none is left
        labels = squared_distances(x, centroids).argmin(axis=1)
        sizes = np.bincount(labels, minlength=len(centroids))
        if sizes.min() >= min_size:
            break
        keep = np.ones(len(centroids), dtype=bool)
        keep[int(np.argmin(sizes))] = False
        centroids = centroids[keep]
        labels = squared_distances(x, centroids).argmin(axis=1)
        sizes = np.bincount(labels, minlength=len(centroids))
        centroids = np.array([x[labels == c].mean(axis=0) for c in np.flatnonzero(sizes)])
    return centroids, labels


def fit_cohort(
    cohort: npt.ArrayLike,
    reference: npt.ArrayLike,
    *,
    nearest: int = DEFAULT_NEAREST,
    target_size: int = DEFAULT_TARGET_SIZE,
    seed: int = 0,
    metric: str = "euclidean",
) -> CohortNormaliser:
    """A cohort from ``cohort`` descriptors, its constants from ``reference`` descriptors.

    ``metric``: the descriptor model's (``cosine``: the descriptors are scaled to unit length
    first, and the statistic is the expected cosine distance, :class:`CohortNormaliser`).

    The result is exactly what its JSON form reloads to (centroids rounded to float32), so the
    fitted object and the shipped file score identically.
    """
    x = np.asarray(cohort, dtype=np.float64)
    if metric == "cosine":
        lengths = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(lengths > 0, lengths, 1.0)
    centroids, labels = kmeans(x, len(x) // target_size, seed=seed)
    sizes = np.bincount(labels, minlength=len(centroids))
    spread = np.array(
        [np.mean(np.sum((x[labels == c] - centroids[c]) ** 2, axis=1)) for c in range(len(sizes))]
    )
    unclipped = CohortNormaliser(
        centroids, spread, tuple(int(n) for n in sizes), nearest, 0.0, -np.inf, np.inf, metric
    )
    stats = unclipped.stats(reference)
    low, high = np.percentile(stats, CLIP_PERCENTILES)
    fitted = CohortNormaliser(
        centroids,
        spread,
        unclipped.sizes,
        nearest,
        float(np.median(stats)),
        float(low),
        float(high),
        metric,
    )
    return CohortNormaliser.from_json(fitted.to_json())


def fit_parts_cohort(
    cohort: npt.ArrayLike,
    reference: npt.ArrayLike,
    space: VectorSpace,
    weights: Sequence[float],
    *,
    nearest: int = DEFAULT_NEAREST,
    target_size: int = DEFAULT_TARGET_SIZE,
    seed: int = 0,
) -> PartsCohort:
    """A fused model's cohort (:class:`facegate.engine.matching.PartsCohort`): one
    :func:`fit_cohort` per part of ``space``, on that part's slice of the same cohort and
    reference faces with the part's metric, combined with the fusion ``weights`` (so the
    statistic, the offset and the clip range are the weighted sums of the parts')."""
    x = np.asarray(cohort, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    parts = tuple(
        fit_cohort(
            x[:, cut],
            ref[:, cut],
            nearest=nearest,
            target_size=target_size,
            seed=seed,
            metric=part.metric,
        )
        for part, cut in zip(space.parts, space.slices(), strict=True)
    )
    return PartsCohort(parts, space.weights_or_ones(weights))


def cohort_json(scorer: CohortNormaliser | PartsCohort) -> dict[str, Any]:
    """The shipped form of a fitted cohort (a fused model's: ``{"parts": [...]}``, its weights
    being the calibration document's ``"fusion"``)."""
    if isinstance(scorer, PartsCohort):
        return {"parts": [p.to_json() for p in scorer.parts]}
    return scorer.to_json()


def cohort_sizes(scorer: CohortNormaliser | PartsCohort) -> tuple[int, ...]:
    """Every centroid's size (all parts')."""
    if isinstance(scorer, PartsCohort):
        return tuple(n for p in scorer.parts for n in p.sizes)
    return scorer.sizes
