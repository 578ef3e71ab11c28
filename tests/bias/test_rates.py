"""Error rates, their by-group comparison and thresholds against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facegate.bias.rates import (
    Disparity,
    by_group,
    error_rates,
    fairness_discrepancy_rate,
)
from facegate.bias.thresholds import (
    det_curve,
    lowest_balanced_threshold,
    sweep,
    threshold_for_fmr,
)


def test_ties_at_the_threshold_count_as_matches() -> None:
    r = error_rates([0.4, 0.5, 0.6], [0.5, 0.7, 0.9, 1.0], threshold=0.5)
    assert (r.false_non_matches, r.mated_pairs) == (1, 3)  # only 0.6 > 0.5
    assert (r.false_matches, r.nonmated_pairs) == (1, 4)  # 0.5 <= 0.5 matches
    assert r.fnmr == pytest.approx(1 / 3)
    assert r.fmr == pytest.approx(0.25)


def test_empty_inputs_give_undefined_rates_not_zero() -> None:
    r = error_rates([], [], threshold=0.6)
    assert r.fmr is None
    assert r.fnmr is None
    assert r.as_dict()["mated_pairs"] == 0
    only_mated = error_rates([0.1], [], 0.6)
    assert only_mated.fnmr == 0.0
    assert only_mated.fmr is None


def test_nan_scores_are_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        error_rates([math.nan], [], 0.6)


def _two_groups() -> tuple[list[float], list[bool], list[str]]:
    # group a: mated 0.3, 0.7 (1 FNM of 2); non-mated 0.5, 0.9, 1.0, 1.1 (1 FM of 4)
    # group b: mated 0.2, 0.4 (0 of 2);    non-mated 0.1, 0.6, 0.8, 1.2 (3 FM of 4)
    scores = [0.3, 0.7, 0.5, 0.9, 1.0, 1.1, 0.2, 0.4, 0.1, 0.6, 0.8, 1.2]
    mated = [True, True, False, False, False, False, True, True, False, False, False, False]
    groups = ["a"] * 6 + ["b"] * 6
    return scores, mated, groups


def test_by_group_hand_example() -> None:
    scores, mated, groups = _two_groups()
    t = by_group(scores, mated, groups, 0.8, min_pairs=2)
    a, b = t.group("a").rates, t.group("b").rates
    assert (a.false_matches, a.nonmated_pairs, a.false_non_matches, a.mated_pairs) == (1, 4, 0, 2)
    assert (b.false_matches, b.nonmated_pairs, b.false_non_matches, b.mated_pairs) == (3, 4, 0, 2)
    assert t.overall.fmr == pytest.approx(4 / 8)
    assert t.overall.fnmr == 0.0
    assert t.fmr.by_group == {"a": 0.25, "b": 0.75}
    assert (t.fmr.max_groups, t.fmr.group_max) == (("b",), 0.75)
    assert (t.fmr.min_groups, t.fmr.group_min) == (("a",), 0.25)
    assert t.fmr.difference == pytest.approx(0.5)
    assert t.fmr.ratio == pytest.approx(3.0)
    # geomean(0.25, 0.75) = sqrt(0.1875); Max/GeoMean = 0.75 / sqrt(0.1875) = sqrt(3)
    assert t.fmr.max_geomean == pytest.approx(math.sqrt(3))
    # FNMR all zero: ratio undefined, geomean undefined, both groups listed as zero
    assert t.fnmr.difference == 0.0
    assert t.fnmr.ratio is None
    assert t.fnmr.max_geomean is None
    assert t.fnmr.zero_groups == ("a", "b")
    # FDR = 1 - (0.5 * 0.5 + 0.5 * 0) = 0.75
    assert t.fdr == pytest.approx(0.75)

    t2 = by_group(scores, mated, groups, 0.5, min_pairs=2)
    # a: FNM 1/2 (0.7 > 0.5), FM 1/4 (0.5); b: FNM 0/2, FM 1/4 (0.1)
    assert t2.fnmr.difference == pytest.approx(0.5)
    assert t2.fmr.difference == 0.0
    assert t2.fdr == pytest.approx(0.75)
    assert t2.fmr.max_geomean == pytest.approx(1.0)


def test_zero_rates_are_left_out_of_the_geometric_mean() -> None:
    # three groups, FMR 0, 0.1, 0.4: geomean over {0.1, 0.4} = 0.2, Max/GeoMean = 2
    scores = [0.9] * 10 + [0.1] + [0.9] * 9 + [0.1] * 4 + [0.9] * 6
    groups = ["x"] * 10 + ["y"] * 10 + ["z"] * 10
    t = by_group(scores, [False] * 30, groups, 0.5, min_pairs=5)
    assert t.fmr.geomean == pytest.approx(0.2)
    assert t.fmr.max_geomean == pytest.approx(2.0)
    assert t.fmr.zero_groups == ("x",)
    assert t.fmr.ratio is None  # min is 0
    assert t.fmr.difference == pytest.approx(0.4)
    # impostor-only data: no FNMR at all, so FDR at alpha 0.5 is undefined, at alpha 1 it is not
    assert t.fnmr.groups == ()
    assert t.fnmr.too_small == ()
    assert t.fdr is None
    assert by_group(scores, [False] * 30, groups, 0.5, min_pairs=5, alpha=1.0).fdr == (
        pytest.approx(0.6)
    )


def test_identical_groups_have_fdr_one_and_parity() -> None:
    scores = [0.2, 0.9, 0.4, 0.7] * 2
    mated = [True, True, False, False] * 2
    t = by_group(scores, mated, ["p"] * 4 + ["q"] * 4, 0.5, min_pairs=1)
    assert t.fdr == 1.0
    assert t.fmr.max_geomean == pytest.approx(1.0)
    assert t.fnmr.ratio == pytest.approx(1.0)


def test_single_group_is_defined_sensibly() -> None:
    t = by_group([0.2, 0.9, 0.4, 0.7], [True, True, False, False], ["only"] * 4, 0.5, min_pairs=1)
    assert t.fmr.difference == 0.0
    assert t.fmr.ratio == 1.0
    assert t.fmr.max_geomean == pytest.approx(1.0)
    assert t.fdr == 1.0
    assert t.overall == t.group("only").rates


def test_small_groups_are_listed_not_used() -> None:
    scores, mated, groups = _two_groups()
    scores += [0.1, 0.1]
    mated += [True, False]
    groups += ["tiny", "tiny"]
    t = by_group(scores, mated, groups, 0.8, min_pairs=2)
    assert t.too_small == ("tiny",)
    assert "tiny" in t.fmr.too_small
    assert "tiny" in t.fnmr.too_small
    assert "tiny" not in t.fmr.groups
    assert t.group("tiny").rates.fmr == 1.0  # still reported with its counts
    assert t.fmr.max_groups == ("b",)  # tiny's 100% is not the maximum
    assert t.fdr == pytest.approx(0.75)
    # but it counts in the overall rates
    assert t.overall.nonmated_pairs == 9


def test_empty_input_and_bad_arguments() -> None:
    t = by_group([], [], [], 0.5, min_pairs=1)
    assert t.groups == ()
    assert t.fmr == Disparity({}, ())
    empty = t.fmr
    assert (empty.groups, empty.max_groups, empty.min_groups, empty.zero_groups) == ((),) * 4
    assert (empty.group_max, empty.group_min, empty.difference, empty.ratio) == (None,) * 4
    assert (empty.geomean, empty.max_geomean) == (None, None)
    assert t.fdr is None
    with pytest.raises(ValueError, match="min_pairs"):
        by_group([], [], [], 0.5, min_pairs=0)
    with pytest.raises(ValueError, match="labels"):
        by_group([0.1, 0.2], [True, False], ["a"], 0.5, min_pairs=1)
    with pytest.raises(KeyError):
        t.group("missing")


def test_fdr_alpha_bounds() -> None:
    scores, mated, groups = _two_groups()
    t = by_group(scores, mated, groups, 0.8, min_pairs=2)
    assert fairness_discrepancy_rate(t.fmr, t.fnmr, alpha=0.0) == 1.0
    assert fairness_discrepancy_rate(t.fmr, t.fnmr, alpha=1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="alpha"):
        fairness_discrepancy_rate(t.fmr, t.fnmr, alpha=1.5)


def test_threshold_for_fmr_hand_example() -> None:
    nonmated = [0.9, 0.3, 0.5, 0.5, 0.7, 0.8, 0.6, 0.4, 0.95, 1.0]  # sorted: .3 .4 .5 .5 .6 ...
    t = threshold_for_fmr(nonmated, 0.2)  # 2 of 10 may match -> below s[2] = 0.5
    assert t < 0.5
    assert t == np.nextafter(0.5, 0.0)
    assert error_rates([], nonmated, t).fmr == pytest.approx(0.2)
    # 3 of 10 allowed, but 0.5 is tied twice: both excluded, FMR stays 0.2 <= 0.3
    t3 = threshold_for_fmr(nonmated, 0.3)
    assert t3 == t
    assert threshold_for_fmr(nonmated, 0.4) == np.nextafter(0.6, 0.0)
    assert threshold_for_fmr(nonmated, 0.0) < 0.3
    assert threshold_for_fmr(nonmated, 1.0) == math.inf
    # binary rounding: 0.29 * 100 must allow 29 matches, not 28
    assert threshold_for_fmr(np.arange(100.0), 0.29) == np.nextafter(29.0, 0.0)
    with pytest.raises(ValueError, match="no non-mated"):
        threshold_for_fmr([], 0.1)


def test_det_curve() -> None:
    d = det_curve([0.2, 0.4, 0.6], [0.5, 0.7], [0.1, 0.4, 0.5, 0.8])
    np.testing.assert_allclose(d.fmr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(d.fnmr, [1.0, 1 / 3, 1 / 3, 0.0])
    empty = det_curve([], [0.5], [0.5])
    assert np.isnan(empty.fnmr).all()


def test_sweep_matches_by_group() -> None:
    scores, mated, groups = _two_groups()
    s = sweep(scores, mated, groups, [0.8, 0.5])
    assert s.groups == ("a", "b")
    np.testing.assert_array_equal(s.thresholds, [0.5, 0.8])
    for row, thr in enumerate(s.thresholds):
        t = by_group(scores, mated, groups, float(thr), min_pairs=1)
        for col, g in enumerate(s.groups):
            assert s.fmr[row, col] == t.group(g).rates.fmr
            assert s.fnmr[row, col] == t.group(g).rates.fnmr


def _planted(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-mated distances: two groups alike below 0.51, group B with extra close impostors.

    Each group: 4000 impostors uniform on [0.6, 1.2] and 20 on [0.3, 0.5] (the shared tail).
    Group B also has 150 impostors on [0.51, 0.55]: from 0.52 on it is falsely matched far
    more often, below 0.51 the two groups are samples of the same distribution.
    """
    rng = np.random.default_rng(seed)

    def group(extra: int) -> np.ndarray:
        return np.concatenate(
            [rng.uniform(0.6, 1.2, 4000), rng.uniform(0.3, 0.5, 20), rng.uniform(0.51, 0.55, extra)]
        )

    a, b = group(0), group(150)
    scores = np.concatenate([a, b])
    groups = np.array(["A"] * a.size + ["B"] * b.size)
    return scores, np.zeros(scores.size, dtype=bool), groups


def test_lowest_balanced_threshold_finds_the_planted_imbalance() -> None:
    scores, mated, groups = _planted(7)
    thresholds = np.round(np.arange(0.40, 0.66, 0.02), 2)
    s = sweep(scores, mated, groups, thresholds)
    res = lowest_balanced_threshold(s, significance=0.05)
    assert res.threshold == 0.50
    assert res.first_imbalanced == 0.52
    assert all(c.balanced for c in res.checks if c.threshold <= 0.50)
    assert not any(c.balanced for c in res.checks if c.threshold >= 0.52)
    assert res.checks[-1].worst_pair == ("A", "B")
    # the shared tail makes the strict end non-trivial: both groups have false matches there
    row = int(np.flatnonzero(s.thresholds == 0.50)[0])
    assert (s.false_matches[row] > 5).all()


def test_lowest_balanced_threshold_edge_cases() -> None:
    scores = np.array([0.5, 0.5, 0.1, 0.1])
    s = sweep(scores, np.zeros(4, dtype=bool), ["a", "a", "b", "b"], [0.2, 0.6])
    res = lowest_balanced_threshold(s)  # 2/2 vs 0/2 is not significant with 2 pairs each
    assert res.threshold == 0.6
    assert res.first_imbalanced is None
    one = lowest_balanced_threshold(sweep(scores, np.zeros(4, dtype=bool), ["a"] * 4, [0.3]))
    assert one.threshold == 0.3
    assert one.checks[0].worst_pair is None
    small = lowest_balanced_threshold(s, min_pairs=3)
    assert small.too_small == ("a", "b")
    # strictly imbalanced from the start
    big = np.concatenate([np.full(200, 0.1), np.full(200, 0.9)])
    s2 = sweep(big, np.zeros(400, dtype=bool), ["a"] * 200 + ["b"] * 200, [0.5, 0.95])
    bad = lowest_balanced_threshold(s2, bonferroni=False)
    assert bad.threshold is None
    assert bad.first_imbalanced == 0.5
    with pytest.raises(ValueError, match="significance"):
        lowest_balanced_threshold(s2, significance=0.0)


def test_disparity_keeps_ties_and_leaves_zero_rates_out_of_the_geometric_mean() -> None:
    d = Disparity({"a": 0.2, "b": 0.0, "c": 0.2, "d": 0.05}, ("tiny",))
    assert d.groups == ("a", "b", "c", "d")
    assert (d.max_groups, d.min_groups, d.zero_groups) == (("a", "c"), ("b",), ("b",))
    assert d.difference == pytest.approx(0.2)
    assert d.ratio is None  # the lowest rate is 0
    assert d.geomean == pytest.approx((0.2 * 0.2 * 0.05) ** (1 / 3))
    assert d.max_geomean == pytest.approx(0.2 / (0.2 * 0.2 * 0.05) ** (1 / 3))
    one = Disparity({"only": 0.1})
    assert (one.difference, one.ratio) == (0.0, 1.0)
    assert one.max_geomean == pytest.approx(1.0)
