"""Impostor-only audits on synthetic FairFace-like data (no identities)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from numpy.typing import NDArray

from facegate.bias.datasets import Manifest, Sample
from facegate.bias.groups import group_key, impostor_pairs
from facegate.bias.impostors import REVIEW_NOTE, cross_group_pairs, top_pairs
from facegate.bias.verification import analyse, score_pairs

GROUP_BY = ("race", "gender")


def fairface_like() -> tuple[Manifest, NDArray[np.float32]]:
    """Groups A x female and B x female, 10 images each, no subject ids.

    A: all 10 far apart (FMR 0). B: 5 images within 0.2 of one point (their 10 pairs match at
    Similarity 80 and 99) and 5 far apart: FMR = 10 / 45 over all 45 pairs. B's images 0 and 1
    are identical (a duplicate: distance 0)."""
    samples, vectors = [], []
    axis = 0
    for race in ("A", "B"):
        for k in range(10):
            v = np.zeros(64, dtype=np.float32)
            if race == "B" and k < 5:
                v[63] = 10.0
                v[62] = 0.0 if k < 2 else 0.05 * k
            else:
                v[axis] = 10.0
                axis += 1
            attrs = MappingProxyType({"race": race, "gender": "female"})
            samples.append(Sample(Path(f"/ff/{race}{k}.jpg"), None, attrs, "test"))
            vectors.append(v)
    return Manifest("ff", tuple(samples)), np.stack(vectors)


def test_fmr_per_group_is_known_exactly() -> None:
    manifest, vectors = fairface_like()
    within = impostor_pairs(manifest, GROUP_BY, 45, seed=0)
    assert {k: len(v) for k, v in within.items()} == {"A x female": 45, "B x female": 45}
    pairs = [p for group in within.values() for p in group]
    scored = score_pairs(manifest, vectors, pairs, GROUP_BY)
    at80, at99 = analyse(scored, [80, 99], min_pairs=10, n_boot=100, seed=0)
    for res in (at80, at99):
        assert res.table is not None
        b = res.table.group("B x female").rates
        a = res.table.group("A x female").rates
        assert (b.false_matches, b.nonmated_pairs) == (10, 45)
        assert (a.false_matches, a.nonmated_pairs) == (0, 45)
        assert b.mated_pairs == 0
        assert res.table.fnmr.max_groups == ()


def test_cross_group_pairs_are_cross_distinct_and_seeded() -> None:
    manifest, _ = fairface_like()
    pairs = cross_group_pairs(manifest, GROUP_BY, 30, seed=4)
    assert len(pairs) == 30
    assert len({(p.left, p.right) for p in pairs}) == 30
    for p in pairs:
        assert p.left < p.right
        assert not p.mated
        left, right = manifest.samples[p.left], manifest.samples[p.right]
        assert group_key(left, GROUP_BY) != group_key(right, GROUP_BY)
    assert pairs == cross_group_pairs(manifest, GROUP_BY, 30, seed=4)
    assert pairs != cross_group_pairs(manifest, GROUP_BY, 30, seed=5)
    assert cross_group_pairs(manifest, ("gender",), 5, seed=0) == []  # one group only
    with pytest.raises(ValueError, match=">= 0"):
        cross_group_pairs(manifest, GROUP_BY, -1, seed=0)


def test_top_pairs_lists_the_duplicate_first() -> None:
    manifest, vectors = fairface_like()
    pairs = [p for g in impostor_pairs(manifest, GROUP_BY, 45, seed=0).values() for p in g]
    pairs += cross_group_pairs(manifest, GROUP_BY, 20, seed=0)
    scored = score_pairs(manifest, vectors, pairs, GROUP_BY)
    top = top_pairs(manifest, scored, 3)
    assert len(top) == 3
    assert {Path(top[0].left).name, Path(top[0].right).name} == {"B0.jpg", "B1.jpg"}
    assert top[0].distance == 0.0
    assert top[0].similarity_pct > 99.9
    assert all(t.group == "B x female" for t in top)
    assert [t.distance for t in top] == sorted(t.distance for t in top)
    assert top_pairs(manifest, scored, 0) == []
    assert "data bug" in REVIEW_NOTE


def test_no_face_images_are_counted_not_scored() -> None:
    manifest, vectors = fairface_like()
    vectors[0] = np.nan  # A0 has no face: its 9 pairs in A are unscored
    pairs = [p for g in impostor_pairs(manifest, GROUP_BY, 45, seed=0).values() for p in g]
    scored = score_pairs(manifest, vectors, pairs, GROUP_BY)
    assert scored.unscored_counts()["A x female"] == {"mated": 0, "nonmated": 9}
    (res,) = analyse(scored, [80], min_pairs=10, n_boot=50)
    assert res.table is not None
    assert res.table.group("A x female").rates.nonmated_pairs == 36
