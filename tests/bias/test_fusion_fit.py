"""Fitting a fused model's weights: each part's distance z-scored by LFW's fit-half impostors."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from facegate.bias.calibration import Source, split_source
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import Manifest, load_lfw
from facegate.bias.descriptors import FACE, DescriptorSet
from facegate.bias.fusion_fit import fit_fusion, impostor_moments
from facegate.vectorspace import DLIB_SPACE, parse_space
from tests import synthetic_calibration

SPACE = parse_space("euclidean:4+cosine:6")


def _source(n: int = 60, seed: int = 0) -> Source:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 10)).astype(np.float32)
    vectors[:, :4] *= 3.0  # the Euclidean part spreads far more than the cosine one
    subjects = tuple(f"p{i // 3}" for i in range(n))  # three faces per person
    return Source("lfw", vectors, subjects, {})


def test_impostor_moments_are_those_of_every_pair_of_two_people() -> None:
    source = _source()
    moments = impostor_moments(source, SPACE, block=7)  # blocks that split people
    pairs = [
        (i, j)
        for i, j in itertools.combinations(range(len(source.vectors)), 2)
        if source.subjects is not None and source.subjects[i] != source.subjects[j]
    ]
    x = source.vectors.astype(np.float64)
    for k, part in enumerate(SPACE.parts):
        single = parse_space(str(part))
        cut = SPACE.slices()[k]
        d = np.array([single.distance(x[i, cut], x[j, cut]) for i, j in pairs])
        mean, sd, count = moments[k]
        assert count == len(pairs)
        assert mean == pytest.approx(d.mean())
        assert sd == pytest.approx(d.std(ddof=1))
    with pytest.raises(ValueError, match="no subjects"):
        impostor_moments(Source("x", source.vectors, None, {}), SPACE)


def test_fit_fusion_weighs_each_part_by_its_inverse_deviation_on_lfws_fit_half(
    tmp_path: Path,
) -> None:
    synthetic_calibration.build(tmp_path, tmp_path / "cache.sqlite3", "unused", 10)
    lfw, _ = load_lfw(tmp_path / "lfw")
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(len(lfw), 10)).astype(np.float32)
    vectors[:, :4] *= 3.0  # the Euclidean part spreads far more than the cosine one
    n = len(lfw)
    desc = DescriptorSet("fused", "k", vectors, (FACE,) * n, ("mtcnn",) * n, {}, 0, n)
    weights, note = fit_fusion(lfw, desc, SPACE)
    fit_half, held = split_source(calibration_source(lfw, desc))
    moments = impostor_moments(fit_half, SPACE)
    inverse = np.array([1.0 / sd for _, sd, _ in moments])
    assert weights == pytest.approx(tuple(inverse / inverse.sum()))
    assert weights[1] > weights[0]  # the tighter (cosine) part counts more per unit distance
    assert note["faces"] == len(fit_half.vectors) < n  # the held-out half is not seen
    assert len(held.vectors) > 0
    assert [p["distance"] for p in note["parts"]] == ["euclidean:4", "cosine:6"]
    assert note["parts"][0]["impostor_sd"] == pytest.approx(moments[0][1])


def test_fit_fusion_refuses_what_it_cannot_fit() -> None:
    empty = DescriptorSet("m", "k", np.zeros((0, 10), np.float32), (), (), {}, 0, 0)
    with pytest.raises(ValueError, match="fitted on lfw, not fairface_val"):
        fit_fusion(Manifest("fairface_val", ()), empty, SPACE)
    with pytest.raises(ValueError, match="one part"):
        fit_fusion(Manifest("lfw", ()), empty, DLIB_SPACE)
