"""Intervals for per-group rates and for the across-group summaries."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.bias.intervals import Summary, summary_ci, summary_statistic, wilson_by_group
from facegate.bias.rates import by_group
from facegate.bias.stats import wilson_interval


def _data(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-mated distances whose FMR at 0.5 is about 1%, 2%, 4% in groups a, b, c."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(np.array(["a", "b", "c"]), n)
    p = np.select([groups == "a", groups == "b"], [0.01, 0.02], 0.04)
    scores = np.where(rng.random(n) < p, 0.4, 0.9)
    return scores, np.zeros(n, dtype=bool), groups


def test_statistic_with_unit_weights_equals_the_point_estimate() -> None:
    scores, mated, groups = _data(1)
    table = by_group(scores, mated, groups, 0.5, min_pairs=10)
    codes = np.unique(groups, return_inverse=True)[1]
    errors = (scores <= 0.5).astype(np.float64)
    ones = np.ones((1, scores.size))
    cases: list[tuple[Summary, float | None]] = [
        ("max_geomean", table.fmr.max_geomean),
        ("difference", table.fmr.difference),
        ("max", table.fmr.group_max),
    ]
    for summary, expected in cases:
        value = summary_statistic(codes, 3, summary)(errors, ones)
        assert value[0] == pytest.approx(expected)


def test_summary_ci_covers_the_true_max_geomean() -> None:
    # geomean(0.01, 0.02, 0.04) = (8e-6) ** (1/3) = 0.02, so Max/GeoMean = 0.04 / 0.02 = 2
    true = 2.0
    covered = excludes_parity = 0
    for rep in range(10):
        scores, mated, groups = _data(100 + rep)
        low, high = summary_ci(
            scores, mated, groups, 0.5, kind="fmr", min_pairs=10, n_boot=200, seed=rep
        )
        covered += low <= true <= high
        excludes_parity += low > 1.0
    assert covered >= 8  # 95% intervals: ~10 of 10 expected
    assert excludes_parity >= 8  # and narrow enough to show the planted disparity


def test_summary_ci_uses_only_measurable_groups() -> None:
    scores = np.array([0.4] * 5 + [0.9] * 95 + [0.4] * 10 + [0.9] * 90 + [0.4, 0.4])
    groups = np.array(["a"] * 100 + ["b"] * 100 + ["tiny"] * 2)
    mated = np.zeros(scores.size, dtype=bool)
    _, high = summary_ci(
        scores, mated, groups, 0.5, kind="fmr", summary="max", min_pairs=50, n_boot=200, seed=0
    )
    assert high < 0.5  # tiny's 100% never counts
    with pytest.raises(ValueError, match="enough pairs"):
        summary_ci(scores, mated, groups, 0.5, kind="fnmr", min_pairs=1, seed=0)


def test_wilson_by_group_lists_every_group() -> None:
    table = by_group(
        [0.4, 0.9, 0.4, 0.4], [False, False, False, True], ["a", "a", "b", "b"], 0.5, min_pairs=2
    )
    rows = {r.group: r for r in wilson_by_group(table, "fmr")}
    assert rows["a"].interval == wilson_interval(1, 2)
    assert rows["b"].total == 1
    assert rows["b"].rate == 1.0
    fnmr = {r.group: r for r in wilson_by_group(table, "fnmr")}
    assert fnmr["a"].interval is None
    assert fnmr["a"].rate is None
