"""Calibration: the scale, pair tails, the fit's held-out accuracy, the published table."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from facegate.bias.calibration import (
    CROSS,
    LOWEST_CALIBRATED,
    ZERO_DISTANCE,
    Source,
    fit,
    max_geomean,
    pair_tail,
    pooled_fmr,
    split_keys,
    split_source,
    table,
    target_fmr,
)


@pytest.mark.parametrize(
    ("pct", "fmr"),
    [
        (99.9, 1e-5),
        (99.0, 1e-4),
        (95.0, 5e-4),
        (90.0, 1e-3),
        (85.0, 10**-2.5),
        (80.0, 1e-2),
        (70.0, 0.1),
    ],
)
def test_scale(pct: float, fmr: float) -> None:
    assert target_fmr(pct) == pytest.approx(fmr, rel=1e-9)


def test_scale_is_strictly_decreasing_and_bounded() -> None:
    values = [target_fmr(s) for s in np.linspace(70.0, 100.0, 301)]
    assert all(b < a for a, b in itertools.pairwise(values))
    assert target_fmr(100.0) == 0.0
    with pytest.raises(ValueError, match="between 70 and 100"):
        target_fmr(LOWEST_CALIBRATED - 1)


def _line(points: list[float]) -> np.ndarray:
    """Faces on a line: the distance between faces i and j is |x_i - x_j|."""
    v = np.zeros((len(points), 4), dtype=np.float32)
    v[:, 0] = points
    return v


def test_pair_tail_by_hand() -> None:
    # faces at 0, 0.1, 0.3, 1.0; a and b are one person; groups g1 = {0, 1, 2}, g2 = {3}
    source = Source(
        "hand",
        _line([0.0, 0.1, 0.3, 1.0]),
        ("a", "a", "b", "c"),
        {"g": ("g1", "g1", "g1", "g2")},
    )
    tail = pair_tail(source, cap=0.5, block=2)
    assert tail.impostors == 5  # 6 pairs minus the mated one
    assert tail.mated == pytest.approx([0.1])
    assert tail.tail == pytest.approx([0.2, 0.3])  # 0.7, 0.9, 1.0 are beyond the cap
    codes = tail.groups["g"]
    assert codes.names == ("g1", "g2")
    assert codes.impostor_codes.tolist() == [0, 0]
    assert codes.impostor_totals.tolist() == [2, 0]  # g1: 3 pairs minus 1 mated; g2: none
    assert codes.mated_totals.tolist() == [1, 0]
    assert tail.fmr(0.25) == (1, 5)
    with pytest.raises(ValueError, match="beyond the kept tail"):
        tail.fmr(0.6)


def test_pair_tail_without_identities_and_cross_group_codes() -> None:
    source = Source("ff", _line([0.0, 0.05, 0.1]), None, {"g": ("x", "y", "x")})
    tail = pair_tail(source, cap=1.0)
    assert tail.impostors == 3
    assert len(tail.mated) == 0
    assert tail.tail == pytest.approx([0.05, 0.05, 0.1])
    # the pair (0, 2) at 0.1 is within x; the two at 0.05 cross groups
    assert sorted(tail.groups["g"].impostor_codes.tolist()) == [CROSS, CROSS, 0]


def test_split_is_stable_and_keeps_subjects_together() -> None:
    keys = [f"person-{i}" for i in range(2000)]
    first, again = split_keys(keys), split_keys(keys)
    assert (first == again).all()
    assert 0.45 < first.mean() < 0.55
    subjects = tuple(f"p{i // 3}" for i in range(300))
    source = Source("s", np.zeros((300, 4), np.float32), subjects, {})
    fit_half, held = split_source(source)
    assert fit_half.subjects is not None
    assert held.subjects is not None
    assert not set(fit_half.subjects) & set(held.subjects)
    assert len(fit_half.vectors) + len(held.vectors) == 300


def _gaussian(name: str, n: int, scale: float, seed: int) -> Source:
    rng = np.random.default_rng(seed)
    return Source(name, (rng.normal(size=(n, 8)) * scale).astype(np.float32), None, {})


def test_fit_meets_the_scale_on_held_out_data() -> None:
    # two data sets with different impostor distributions, fitted on one draw, checked on another
    fit_tails = [
        pair_tail(_gaussian("a", 1500, 0.25, 1), 3.0),
        pair_tail(_gaussian("b", 600, 0.2, 2), 3.0),
    ]
    held = [
        pair_tail(_gaussian("a", 1500, 0.25, 3), 3.0),
        pair_tail(_gaussian("b", 600, 0.2, 4), 3.0),
    ]
    mapping = fit(fit_tails, "test-v1")
    assert mapping.distances[0] == 0.0
    assert mapping.similarities[0] == 100.0
    assert mapping.distances[-1] == ZERO_DISTANCE
    assert mapping.similarities[-1] == 0.0
    for s in (80.0, 90.0, 99.0):
        d = mapping.distance_for(s)
        assert pooled_fmr(fit_tails, d) <= target_fmr(s) * (1 + 1e-9)
        assert pooled_fmr(fit_tails, d) > 0.9 * target_fmr(s)  # the largest such distance
        held_fmr = pooled_fmr(held, d)
        assert 0.5 * target_fmr(s) < held_fmr < 2.0 * target_fmr(s)


def test_data_sets_weigh_equally() -> None:
    # "big" has 20x the pairs of "small" and twice its spread: a pair-weighted fit would follow
    # big; the equal-weight FMR is the mean of the two data sets' FMRs.
    tails = [
        pair_tail(_gaussian("big", 2000, 0.3, 5), 3.0),
        pair_tail(_gaussian("small", 450, 0.15, 6), 3.0),
    ]
    mapping = fit(tails, "w")
    d = mapping.distance_for(80.0)
    rates = [t.fmr(d)[0] / t.fmr(d)[1] for t in tails]
    assert np.mean(rates) == pytest.approx(target_fmr(80.0), rel=0.05)
    assert rates[1] > 3 * rates[0]


def test_fit_refuses_what_it_cannot_measure() -> None:
    few = [pair_tail(_gaussian("few", 20, 0.3, 7), 3.0)]
    with pytest.raises(ValueError, match="more data"):
        fit(few, "x")
    source = _gaussian("short", 400, 0.3, 8)
    full = pair_tail(source, 3.0)
    cap = float(np.quantile(full.tail, 0.03))  # keeps FMR up to 3%: Similarity 70 needs 10%
    with pytest.raises(ValueError, match="raise cap"):
        fit([pair_tail(source, cap)], "x", knot_similarities=(70.0, 80.0))
    assert fit([full], "x", knot_similarities=(70.0, 80.0)).distance_for(80.0) < cap
    # scores (a cohort's) below 0 where the tightest knot falls: refused, not a broken map
    shifted = replace(full, tail=full.tail - float(np.quantile(full.tail, 0.05)))
    with pytest.raises(ValueError, match="near-duplicate"):
        fit([shifted], "x", knot_similarities=(70.0, 99.0))


def test_table_rows_groups_and_too_small() -> None:
    rng = np.random.default_rng(9)
    n = 400
    vectors = (rng.normal(size=(n, 8)) * 0.25).astype(np.float32)
    subjects = tuple(f"s{i // 2}" for i in range(n))
    vectors[1::2] = vectors[0::2] + (rng.normal(size=(n // 2, 8)) * 0.02).astype(np.float32)
    groups = tuple("big" if i < n - 20 else "tiny" for i in range(n))
    tail = pair_tail(Source("t", vectors, subjects, {"g": groups}), 3.0)
    mapping = fit([tail], "t", knot_similarities=(70.0, 80.0, 90.0, 99.0))
    rows = table([tail], mapping, (80.0, 99.0), min_pairs=100)
    assert [r["similarity_pct"] for r in rows] == [80.0, 99.0]
    entry = rows[0]["datasets"]["t"]
    assert entry["fmr"]["pairs"] == tail.impostors
    assert entry["fnmr"]["pairs"] == n // 2
    assert entry["fnmr"]["rate"] < 0.05
    g = entry["groups"]["g"]
    assert g["fmr"]["tiny"]["pairs"] == 20 * 19 // 2 - 10
    assert g["fmr"]["tiny"]["too_small"] is False  # 180 pairs
    assert g["fnmr"]["tiny"]["too_small"] is True  # 10 mated pairs
    assert g["fmr"]["big"]["rate"] == pytest.approx(
        g["fmr"]["big"]["errors"] / g["fmr"]["big"]["pairs"]
    )


def test_max_geomean() -> None:
    rows = {
        "a": {"rate": 0.01, "too_small": False},
        "b": {"rate": 0.04, "too_small": False},
        "c": {"rate": 0.0, "too_small": False},  # zero rates leave the geometric mean (NIST)
        "d": {"rate": 0.5, "too_small": True},
    }
    assert max_geomean(rows) == pytest.approx(0.04 / 0.02)
    assert max_geomean({"a": {"rate": 0.01, "too_small": False}}) is None
