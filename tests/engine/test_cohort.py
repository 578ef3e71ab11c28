"""The cohort normaliser: contract, bounds, shipped file, and a planted look-alike region."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.engine.cohort import (
    MIN_CENTROID_FACES,
    SMALL_PRODUCT,
    CohortNormaliser,
    squared_distances,
)
from facegate.engine.matching import (
    Matcher,
    RawScorer,
    ShippedCohort,
    default_matcher,
    matcher_named,
    raw_matcher,
)
from facegate.engine.similarity import CalibratedSimilarity

RNG = np.random.default_rng(7)


def _cohort(centroids: np.ndarray, nearest: int = 2) -> CohortNormaliser:
    k = len(centroids)
    return CohortNormaliser(
        centroids=centroids,
        spread_sq=np.full(k, 0.04),
        sizes=(MIN_CENTROID_FACES,) * k,
        nearest=nearest,
        offset=0.6,
        low=0.3,
        high=0.9,
    )


def test_a_centroid_of_fewer_than_twenty_faces_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 20 faces"):
        CohortNormaliser(np.zeros((2, 4)), np.zeros(2), (20, 19), 1, 0.5, 0.0, 1.0)
    with pytest.raises(ValueError, match="nearest"):
        CohortNormaliser(np.zeros((2, 4)), np.zeros(2), (20, 20), 3, 0.5, 0.0, 1.0)
    with pytest.raises(ValueError, match="low <= offset <= high"):
        CohortNormaliser(np.zeros((2, 4)), np.zeros(2), (20, 20), 1, 2.0, 0.0, 1.0)


def test_stats_are_the_expected_distance_to_the_nearest_clusters_clipped() -> None:
    c = _cohort(np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]]))
    x = np.array([[0.0, 0.0]])
    expected = (np.sqrt(0.0 + 0.04) + np.sqrt(1.0 + 0.04)) / 2  # the two nearest centroids
    assert c.stats(x)[0] == pytest.approx(np.clip(expected, 0.3, 0.9))
    far = np.array([[50.0, 50.0]])
    assert c.stats(far)[0] == 0.9  # an outlier gains at most high - offset
    with pytest.raises(ValueError, match="descriptors of 3 values"):
        c.stats(np.zeros((1, 3)))


def test_scores_and_the_distance_bound() -> None:
    c = _cohort(RNG.normal(size=(6, 8)))
    probe = RNG.normal(size=8)
    faces = RNG.normal(size=(500, 8))
    d = np.linalg.norm(faces - probe, axis=1)
    p, f = c.stats(probe)[0], c.stats(faces)
    scores = c.scores(d, p, f)
    assert np.allclose(scores, d - (p + f) / 2 + c.offset)
    limit = float(np.median(scores))
    bound = c.distance_bound(limit, p)
    assert np.all(d[scores <= limit] <= bound + 1e-12)  # no face within the limit is beyond it
    assert c.max_shift == pytest.approx(0.3)


def test_json_round_trip_keeps_the_version() -> None:
    c = _cohort(RNG.normal(size=(3, 4)).astype(np.float32).astype(np.float64))
    again = CohortNormaliser.from_json(c.to_json())
    assert again.version == c.version
    assert np.allclose(again.stats(np.ones((1, 4))), c.stats(np.ones((1, 4))))
    moved = c.to_json() | {"offset": 0.61}
    assert CohortNormaliser.from_json(moved).version != c.version


def test_the_shipped_cohort_holds_only_aggregates_of_twenty_or_more() -> None:
    shipped = ShippedCohort().normaliser
    assert isinstance(shipped, CohortNormaliser)  # dlib's is one cohort, not a fused one
    assert min(shipped.sizes) >= MIN_CENTROID_FACES
    assert shipped.dimensions == 128
    assert shipped.low < shipped.offset < shipped.high
    matcher = default_matcher()
    assert matcher.normalised
    assert shipped.version in matcher.version  # the Similarity names the cohort it was fitted on


def test_a_planted_look_alike_region_must_match_more_closely() -> None:
    """Many cohort clusters crowd around A, few around B: at the same distance, a pair near A
    gets a lower Similarity than a pair near B."""
    dim = 128
    a_centre, b_centre = np.zeros(dim), np.zeros(dim)
    a_centre[0], b_centre[1] = 1.0, 1.0
    crowd = a_centre + RNG.normal(scale=0.05, size=(30, dim)) / np.sqrt(dim)
    lonely = b_centre + np.full(dim, 0.4 / np.sqrt(dim))
    cohort = CohortNormaliser(
        np.vstack([crowd, lonely]), np.full(31, 0.05), (20,) * 31, 2, 0.4, 0.1, 0.8
    )
    matcher = Matcher(CalibratedSimilarity(), cohort)
    step = np.zeros(dim)
    step[2] = 0.45
    near_a = matcher.compare(a_centre, a_centre + step)
    near_b = matcher.compare(b_centre, b_centre + step)
    raw = raw_matcher()
    assert raw.compare(a_centre, a_centre + step) == pytest.approx(
        raw.compare(b_centre, b_centre + step)
    )
    assert near_a < near_b


def test_raw_and_named_matchers() -> None:
    raw = raw_matcher()
    assert not raw.normalised
    assert isinstance(raw.scorer, RawScorer)
    a, b = RNG.normal(size=128), RNG.normal(size=128)
    d = float(np.linalg.norm(a - b))
    assert raw.compare(a, b) == pytest.approx(CalibratedSimilarity().similarity_pct(d))
    assert matcher_named("none").version == raw.version
    assert matcher_named(" Cohort ").version == default_matcher().version
    with pytest.raises(ValueError, match="FACEGATE_SCORE_NORMALISATION must be one of"):
        matcher_named("zscore")
    assert raw.distance_bound(0.0, 0.0) == np.inf


def test_similarity_100_still_bounds_a_normalised_search() -> None:
    m = default_matcher()
    probe_stat = float(m.stats(np.zeros((1, 128)))[0])
    assert m.distance_bound(100.0, probe_stat) >= 0.0
    assert m.distance_bound(99.0, probe_stat) > m.distance_bound(100.0, probe_stat)


def test_squared_distances_agree_below_and_above_the_small_product() -> None:
    """The einsum path of a small product and BLAS's of a large one give the same squared
    distances as the direct sum (to rounding), on faceres-sized rows."""
    rng = np.random.default_rng(4)
    centroids = rng.normal(size=(29, 1024))
    for rows in (1, 101, SMALL_PRODUCT // (29 * 1024) + 50):
        x = rng.normal(size=(rows, 1024))
        direct = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        assert np.allclose(squared_distances(x, centroids), direct, rtol=1e-12, atol=1e-9)
