"""The fused score of dlib and faceres and its cohort (engine/fusion.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.bias.cohort_fit import fit_fused_cohort
from facegate.engine.fusion import (
    DLIB_DIM,
    FACERES_DIM,
    Euclidean,
    FusedCohort,
    Fusion,
    joint,
    split,
)

FUSION = Fusion(dlib_mean=0.85, dlib_sd=0.08, faceres_mean=0.75, faceres_sd=0.09)


def _joint(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres1 = rng.normal(scale=0.3, size=(6, DLIB_DIM))
    centres2 = rng.normal(size=(6, FACERES_DIM))
    labels = rng.integers(0, 6, n)
    a = centres1[labels] + rng.normal(scale=0.05, size=(n, DLIB_DIM))
    b = centres2[labels] + rng.normal(scale=0.5, size=(n, FACERES_DIM))
    return joint(a, b)


def test_fused_distance_is_the_weighted_sum_and_orders_as_the_z_sum() -> None:
    w1, w2 = FUSION.weights
    assert w1 + w2 == pytest.approx(1.0)
    assert w1 / w2 == pytest.approx(FUSION.faceres_sd / FUSION.dlib_sd)
    rng = np.random.default_rng(1)
    d, e = rng.uniform(0, 1.2, 500), rng.uniform(0, 2.0, 500)
    fused = FUSION.distance(d, e)
    assert np.allclose(fused, w1 * d + w2 * e**2 / 2)
    z = FUSION.z(d, e)
    assert np.allclose(FUSION.z_of_distance(fused), z)
    assert (np.argsort(fused) == np.argsort(z)).all()
    assert FUSION.distance(0.0, 0.0) == 0.0
    # the faceres term is never negative: dlib_bound prunes no pair within the limit
    assert (d[fused <= 0.5] <= FUSION.dlib_bound(0.5) + 1e-12).all()


def test_pairwise_and_paired_agree_with_the_two_models_distances() -> None:
    x = _joint(20)
    a1, a2 = split(x)
    e = Euclidean()
    expected = FUSION.distance(e.pairwise(a1, a1), e.pairwise(a2, a2))
    assert np.allclose(FUSION.pairwise(x, x), expected, atol=1e-9)
    assert np.allclose(FUSION.paired(x[:10], x[10:]), np.diag(expected[:10, 10:]), atol=1e-9)
    cos = (a2[:10] * a2[10:]).sum(axis=1)  # unit rows: cosine distance = e^2 / 2
    assert np.allclose(e.paired(a2[:10], a2[10:]) ** 2 / 2, 1 - cos)


def test_joint_normalises_faceres_and_checks_shapes() -> None:
    x = joint(np.ones((2, DLIB_DIM)), np.full((2, FACERES_DIM), 3.0))
    assert x.shape == (2, DLIB_DIM + FACERES_DIM)
    assert np.allclose(np.linalg.norm(split(x)[1], axis=1), 1.0)
    with pytest.raises(ValueError, match="need"):
        joint(np.ones((2, 127)), np.ones((2, FACERES_DIM)))
    with pytest.raises(ValueError, match="joint descriptors"):
        split(np.ones((1, 10)))
    with pytest.raises(ValueError, match="positive"):
        Fusion(0.8, 0.0, 0.7, 0.1)


def test_fused_cohort_round_trips_and_keeps_the_cohort_contract() -> None:
    cohort, reference = _joint(300, 2), _joint(200, 3)
    fitted = fit_fused_cohort(cohort, reference, FUSION, target_size=30)
    again = FusedCohort.from_json(fitted.to_json())
    assert again.version == fitted.version
    assert min(fitted.sizes) >= 20 and sum(fitted.sizes) == len(cohort)
    stats = fitted.stats(reference)
    assert np.all((stats >= fitted.low) & (stats <= fitted.high))
    assert fitted.offset == pytest.approx(float(np.median(stats)), abs=1e-6)
    # score = fused distance - mean statistic + offset; the bound holds for any face
    d = FUSION.pairwise(reference[:5], reference[5:50])
    s = fitted.scores(d, stats[:5, None], stats[None, 5:50])
    assert np.allclose(s, d - (stats[:5, None] + stats[None, 5:50]) / 2 + fitted.offset)
    limit = float(np.median(s))
    for i in range(5):
        assert (d[i][s[i] <= limit] <= fitted.distance_bound(limit, float(stats[i])) + 1e-12).all()
    with pytest.raises(ValueError, match="not a fused cohort"):
        FusedCohort.from_json({"kind": "single"})


def test_the_expected_fused_distance_to_a_cluster_matches_its_members() -> None:
    cohort = _joint(400, 4)
    fitted = fit_fused_cohort(cohort, cohort, FUSION, target_size=100)
    probe = _joint(1, 5)
    expected = fitted.expected(probe)[0]
    # members of the nearest cluster: the mean fused distance is close to the model's estimate
    x1, x2 = split(cohort)
    c1 = fitted.dlib_centroids
    k = int(np.argmin(expected))
    members = np.flatnonzero(((x1[:, None, :] - c1[None]) ** 2).sum(-1).argmin(1) == k)
    actual = FUSION.pairwise(probe, cohort[members]).mean()
    assert actual == pytest.approx(expected[k], rel=0.05)
