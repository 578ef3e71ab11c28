"""Fitting the fusion constants on LFW's fit half, and pair distances under a metric."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.bias.calibration import Source, pair_tail
from facegate.bias.fusion_fit import impostor_moments, joint_set
from facegate.engine.fusion import Euclidean, Fusion, joint


def _sources(n: int = 60) -> tuple[Source, Source]:
    rng = np.random.default_rng(0)
    subjects = tuple(f"p{i // 3}" for i in range(n))
    a = rng.normal(size=(n, 128)).astype(np.float32)
    b = rng.normal(size=(n, 1024))
    b = (b / np.linalg.norm(b, axis=1, keepdims=True)).astype(np.float32)
    return Source("lfw", a, subjects, {}), Source("lfw", b, subjects, {})


def test_impostor_moments_are_those_of_every_impostor_pair() -> None:
    dlib, faceres = _sources()
    m = impostor_moments(dlib, faceres, block=7)
    d, c = [], []
    for i in range(60):
        for j in range(i + 1, 60):
            if dlib.subjects is not None and dlib.subjects[i] != dlib.subjects[j]:
                d.append(np.linalg.norm(dlib.vectors[i].astype(float) - dlib.vectors[j]))
                c.append(1.0 - float(np.dot(faceres.vectors[i], faceres.vectors[j])))
    assert m["pairs"] == len(d)
    assert m["dlib"] == pytest.approx((np.mean(d), np.std(d)), rel=1e-6)
    assert m["faceres"] == pytest.approx((np.mean(c), np.std(c)), rel=1e-5)


def test_impostor_moments_need_the_same_faces() -> None:
    dlib, faceres = _sources()
    other = Source("lfw", faceres.vectors, tuple(reversed(faceres.subjects or ())), {})
    with pytest.raises(ValueError, match="same faces"):
        impostor_moments(dlib, other)


def test_pair_tail_under_a_metric() -> None:
    dlib, faceres = _sources(30)
    plain = pair_tail(dlib, cap=np.inf)
    euclid = pair_tail(dlib, cap=np.inf, metric=Euclidean())
    assert np.allclose(plain.tail, euclid.tail) and np.allclose(plain.mated, euclid.mated)
    fusion = Fusion(10.0, 1.0, 1.0, 0.05)
    x = joint(dlib.vectors, faceres.vectors).astype(np.float32)
    fused = pair_tail(Source("lfw", x, dlib.subjects, {}), cap=np.inf, metric=fusion)
    assert fused.impostors == plain.impostors
    i, j = np.triu_indices(30, 1)
    all_pairs = fusion.pairwise(x, x)[i, j]
    assert np.allclose(np.sort(np.concatenate([fused.tail, fused.mated])), np.sort(all_pairs))


def test_joint_set_refuses_different_faces() -> None:
    from dataclasses import replace

    from facegate.bias.descriptors import DescriptorSet

    a = DescriptorSet("dlib-resnet-v1", "k", np.zeros((2, 128), np.float32), ("face", "no_face"),
                      ("mtcnn", ""), {}, 0, 2)  # fmt: skip
    b = replace(a, vectors=np.ones((2, 1024), np.float32), statuses=("face", "face"))
    with pytest.raises(ValueError, match="same faces"):
        joint_set(a, b)
