"""Wilson intervals, the seeded bootstrap and Fisher's exact test."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.bias.stats import (
    bootstrap_ci,
    bootstrap_distribution,
    fisher_exact,
    weighted_mean,
    wilson_interval,
)


def test_wilson_known_values() -> None:
    # Reference values: Wilson (1927) score interval, z = 1.959964 (e.g. R binom::binom.wilson)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775328), abs=1e-6)
    assert wilson_interval(5, 10) == pytest.approx((0.2365931, 0.7634069), abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((0.7224672, 1.0), abs=1e-6)
    assert wilson_interval(1, 100) == pytest.approx((0.0017674, 0.0544862), abs=1e-6)
    low90, high90 = wilson_interval(5, 10, ci=0.90) or (0.0, 0.0)
    assert 0.2366 < low90 < 0.5 < high90 < 0.7634
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="errors"):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match="ci"):
        wilson_interval(1, 2, ci=1.0)


def test_fisher_exact_known_values() -> None:
    # Values from scipy.stats.fisher_exact (two-sided) on the same tables
    assert fisher_exact(1, 10, 9, 10) == pytest.approx(0.0010933, abs=1e-6)
    assert fisher_exact(0, 5, 5, 5) == pytest.approx(2 / 252)
    assert fisher_exact(3, 10, 3, 10) == pytest.approx(1.0)
    # tea tasting: 3 of 4 vs 1 of 4 -> p = 0.4857
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(0.4857143, abs=1e-6)
    assert fisher_exact(0, 100, 0, 50) == 1.0
    assert fisher_exact(0, 0, 3, 5) == 1.0
    assert fisher_exact(3, 4, 1, 4) == fisher_exact(1, 4, 3, 4)


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    values = (np.random.default_rng(0).random(500) < 0.1).astype(float)
    first = bootstrap_ci(values, n_boot=200, seed=11)
    assert first == bootstrap_ci(values, n_boot=200, seed=11)
    assert first != bootstrap_ci(values, n_boot=200, seed=12)
    # chunking does not change the draws' statistic distribution shape or length
    dist = bootstrap_distribution(values, n_boot=37, seed=1, chunk_elements=1000)
    assert dist.shape == (37,)


def test_bootstrap_interval_covers_the_true_rate() -> None:
    """Coverage of the 95% interval over 200 seeded synthetic samples of 300 pairs, p = 0.1.

    A correct interval covers ~95% (binomial sd 1.5 points over 200 runs); a too-narrow one
    (e.g. half width) would cover ~68%, a degenerate [0, 1] one 100%. The mean width must
    also agree with Wilson's, so neither a wide nor a narrow interval passes.
    """
    p, n, reps = 0.1, 300, 200
    rng = np.random.default_rng(2024)
    covered = 0
    widths = []
    for rep in range(reps):
        values = (rng.random(n) < p).astype(float)
        low, high = bootstrap_ci(values, n_boot=400, seed=rep)
        covered += low <= p <= high
        widths.append(high - low)
    assert 0.89 <= covered / reps <= 0.985
    wl, wh = wilson_interval(int(p * n), n) or (0.0, 1.0)
    assert float(np.mean(widths)) == pytest.approx(wh - wl, rel=0.1)


def test_stratified_bootstrap_keeps_group_sizes() -> None:
    # group a all errors, group b none: every stratified resample has mean exactly 1/3
    values = np.array([1.0] * 10 + [0.0] * 20)
    strata = ["a"] * 10 + ["b"] * 20
    assert bootstrap_ci(values, n_boot=100, seed=0, strata=strata) == pytest.approx((1 / 3, 1 / 3))
    low, high = bootstrap_ci(values, n_boot=100, seed=0)
    assert low < 1 / 3 < high


def test_cluster_bootstrap_widens_for_correlated_pairs() -> None:
    """Subjects either fail all their 20 pairs or none: a pair bootstrap is overconfident."""
    rng = np.random.default_rng(5)
    subject_fails = rng.random(50) < 0.2
    subjects = np.repeat(np.arange(50), 20)
    values = subject_fails[subjects].astype(float)
    pair_low, pair_high = bootstrap_ci(values, n_boot=500, seed=1)
    cl_low, cl_high = bootstrap_ci(values, n_boot=500, seed=1, cluster=subjects)
    assert (cl_high - cl_low) > 3 * (pair_high - pair_low)
    # a cluster is resampled whole: the resampled mean is a multiple of 1/50
    dist = bootstrap_distribution(values, n_boot=50, seed=3, cluster=subjects)
    np.testing.assert_allclose(dist * 50, np.round(dist * 50), atol=1e-9)


def test_custom_statistic_and_errors() -> None:
    # two columns: error indicator and group code; statistic = difference of group rates
    values = np.array([[1, 0], [0, 0], [1, 1], [1, 1]], dtype=float)

    def gap(v: np.ndarray, w: np.ndarray) -> np.ndarray:
        in_b = v[:, 1] == 1
        rate_b = weighted_mean(v[in_b, 0], w[:, in_b])
        rate_a = weighted_mean(v[~in_b, 0], w[:, ~in_b])
        out: np.ndarray = rate_b - rate_a
        return out

    low, high = bootstrap_ci(values, gap, n_boot=200, seed=0, strata=values[:, 1])
    assert 0.0 <= low <= high <= 1.0
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([], seed=0)
    with pytest.raises(ValueError, match="undefined"):
        bootstrap_ci([1.0, 2.0], lambda v, w: np.full(w.shape[0], np.nan), n_boot=5, seed=0)
