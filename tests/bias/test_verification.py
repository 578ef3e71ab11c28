"""Verification analysis on synthetic descriptors whose answers are known exactly."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from numpy.typing import NDArray

from facegate.bias.datasets import Manifest, Pair, Sample
from facegate.bias.verification import (
    CROSS_GROUP,
    analyse,
    pair_distances,
    score_pairs,
    threshold_json,
)
from facegate.engine.similarity import LOGISTIC_V0

DIM = 128


class Builder:
    """Samples with chosen vectors: ``base(i)`` is 10 * e_i, offsets move along e_127."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.vectors: list[NDArray[np.float32]] = []
        self.next_axis = 0

    def add(self, subject: str, gender: str, vector: NDArray[np.float32]) -> int:
        attrs = MappingProxyType({"gender": gender})
        self.samples.append(Sample(Path(f"/x/{len(self.samples)}.jpg"), subject, attrs, "test"))
        self.vectors.append(vector)
        return len(self.samples) - 1

    def base(self) -> NDArray[np.float32]:
        v = np.zeros(DIM, dtype=np.float32)
        v[self.next_axis] = 10.0
        self.next_axis += 1
        return v

    def shifted(self, v: NDArray[np.float32], d: float) -> NDArray[np.float32]:
        out = v.copy()
        out[DIM - 1] += d
        return out

    def pair(self, subjects: tuple[str, str], gender: str, d: float | None) -> tuple[int, int]:
        """Two samples at distance ``d`` (None: far apart)."""
        base = self.base()
        a = self.add(subjects[0], gender, base)
        other = self.base() if d is None else self.shifted(base, d)
        return a, self.add(subjects[1], gender, other)

    def manifest(self) -> tuple[Manifest, NDArray[np.float32]]:
        return Manifest("synthetic", tuple(self.samples)), np.stack(self.vectors)


def build() -> tuple[Manifest, NDArray[np.float32], list[Pair]]:
    """female: 10 mated at 0.1, 10 far impostors; male: 5 mated at 0.1 and 5 at 0.5, 10
    impostors of which 2 are planted at 0.5; unknown: 2 mated pairs (too small); one no-face
    mated and one no-face non-mated pair in female; one cross-group impostor pair."""
    b = Builder()
    pairs: list[Pair] = []
    for k in range(10):
        pairs.append(Pair(*b.pair((f"f{k}", f"f{k}"), "female", 0.1), mated=True))
        pairs.append(Pair(*b.pair((f"fa{k}", f"fb{k}"), "female", None), mated=False))
        pairs.append(Pair(*b.pair((f"m{k}", f"m{k}"), "male", 0.1 if k < 5 else 0.5), True))
        planted = 0.5 if k < 2 else None
        pairs.append(Pair(*b.pair((f"ma{k}", f"mb{k}"), "male", planted), mated=False))
    for k in range(2):
        pairs.append(Pair(*b.pair((f"u{k}", f"u{k}"), "", 0.1), mated=True))
    blank = np.full(DIM, np.nan, dtype=np.float32)
    nf = b.add("nf", "female", blank)
    nf_mate = b.add("nf", "female", b.base())
    other = b.add("other", "female", b.base())
    pairs += [Pair(nf, nf_mate, mated=True), Pair(nf, other, mated=False)]
    female, male = b.add("cf", "female", b.base()), b.add("cm", "male", b.base())
    pairs.append(Pair(female, male, mated=False))
    manifest, vectors = b.manifest()
    return manifest, vectors, pairs


def test_pair_distances_match_numpy_and_nan_for_no_face() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    vectors[5] = np.nan
    pairs = [Pair(0, 1, True), Pair(2, 4, False), Pair(3, 5, False)]
    d = pair_distances(vectors, pairs)
    assert d[0] == pytest.approx(float(np.linalg.norm(vectors[0] - vectors[1])), rel=1e-6)
    assert d[1] == pytest.approx(float(np.linalg.norm(vectors[2] - vectors[4])), rel=1e-6)
    assert np.isnan(d[2])
    assert pair_distances(vectors, []).shape == (0,)


def test_score_pairs_groups_cross_and_unscored() -> None:
    manifest, vectors, pairs = build()
    scored = score_pairs(manifest, vectors, pairs, ("gender",))
    assert scored.groups[-1] == CROSS_GROUP
    counts = scored.unscored_counts()
    assert counts["female"] == {"mated": 1, "nonmated": 1}
    assert counts["male"] == {"mated": 0, "nonmated": 0}
    with pytest.raises(ValueError, match="descriptor rows"):
        score_pairs(manifest, vectors[:3], pairs, ("gender",))


def test_known_rates_at_80_and_99() -> None:
    manifest, vectors, pairs = build()
    scored = score_pairs(manifest, vectors, pairs, ("gender",))
    at80, at99 = analyse(scored, [80, 99], min_pairs=5, n_boot=200, seed=3, similarity=LOGISTIC_V0)
    assert at80.distance == pytest.approx(0.6, abs=1e-9)
    assert at99.distance == pytest.approx(0.4, abs=1e-9)
    assert at80.table is not None
    assert at99.table is not None
    male80, male99 = at80.table.group("male").rates, at99.table.group("male").rates
    female80 = at80.table.group("female").rates
    assert (male80.false_matches, male80.nonmated_pairs) == (2, 10)
    assert (male80.false_non_matches, male80.mated_pairs) == (0, 10)
    assert (male99.false_matches, male99.false_non_matches) == (0, 5)
    # the no-face pairs are not in the rates
    assert (female80.mated_pairs, female80.nonmated_pairs) == (10, 10)
    assert at80.table.fmr.max_groups == ("male",)
    assert at80.table.fmr.zero_groups == ("female",)
    assert at99.table.fnmr.group_max == pytest.approx(0.5)
    assert at99.table.fnmr.difference == pytest.approx(0.5)
    assert at99.table.fdr == pytest.approx(1 - 0.5 * 0.5)
    assert "unknown" in at80.table.fnmr.too_small
    assert at80.cross is not None
    assert (at80.cross.false_matches, at80.cross.nonmated_pairs) == (
        0,
        1,
    )
    male_ci = {g.group: g.interval for g in at80.fmr_ci}["male"]
    assert male_ci is not None
    assert male_ci[0] < 0.2 < male_ci[1]
    # all positive FMR in one group: Max/GeoMean is 1 on every resample where it is defined
    assert at80.fmr_max_geomean_ci == pytest.approx((1.0, 1.0))
    assert at99.fmr_max_geomean_ci is None  # every FMR is 0: undefined


def test_analysis_is_deterministic_and_json_ready() -> None:
    manifest, vectors, pairs = build()
    scored = score_pairs(manifest, vectors, pairs, ("gender",))
    first = analyse(scored, [80, 99], min_pairs=5, n_boot=100, seed=7)
    second = analyse(scored, [80, 99], min_pairs=5, n_boot=100, seed=7)
    assert first == second
    data = threshold_json(first[1])
    assert data["similarity_pct"] == 99.0
    groups = {g["group"]: g for g in data["groups"]}
    assert groups["male"]["fnmr"] == 0.5
    assert data["fnmr"]["max_group"] == "male"
    assert data["cross_group"]["nonmated_pairs"] == 1


def test_no_scored_pairs_gives_empty_table() -> None:
    manifest, vectors, pairs = build()
    vectors[:] = np.nan
    (res,) = analyse(score_pairs(manifest, vectors, pairs, ("gender",)), [80], n_boot=10)
    assert res.table is None
    assert res.fmr_max_geomean_ci is None
    assert threshold_json(res)["groups"] == []
    assert LOGISTIC_V0.version == "dlib-logistic-v0"
