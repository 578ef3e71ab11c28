"""Vector spaces: the text form collections record, and the distances the index and the matcher
share (facegate.vectorspace)."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.vectorspace import COSINE, DLIB_SPACE, EUCLIDEAN, VectorSpace, parse_space


def test_text_form_round_trips() -> None:
    for text in ("euclidean:128", "cosine:1024", "euclidean:128+cosine:1024"):
        assert str(parse_space(text)) == text
    assert parse_space("euclidean:128") == DLIB_SPACE
    assert parse_space("euclidean:128+cosine:1024").dim == 1152
    for bad in ("", "euclidean", "manhattan:3", "cosine:x", "cosine:0", "cosine:12+"):
        with pytest.raises(ValueError, match=r"vector space|metric must be|dimensions"):
            parse_space(bad)


def test_distances_per_metric_and_weights() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=8), rng.normal(size=8)
    assert VectorSpace.single(EUCLIDEAN, 8).distance(a, b) == pytest.approx(np.linalg.norm(a - b))
    cosine = 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert VectorSpace.single(COSINE, 8).distance(a, b) == pytest.approx(cosine)
    assert VectorSpace.single(COSINE, 8).distance(a, 3 * a) == pytest.approx(0.0, abs=1e-12)
    assert VectorSpace.single(COSINE, 8).distance(a, np.zeros(8)) == 1.0
    fused = parse_space("euclidean:8+cosine:8")
    x, y = np.concatenate([a, b]), np.concatenate([b, a])
    expected = 2.0 * np.linalg.norm(a - b) + 0.5 * cosine
    assert fused.distance(x, y, (2.0, 0.5)) == pytest.approx(expected)
    assert fused.distances(x, np.vstack([x, y]), (2.0, 0.5)) == pytest.approx([0.0, expected])
    for weights in ((1.0,), (1.0, 0.0), (1.0, float("nan"))):
        with pytest.raises(ValueError, match="positive weights"):
            fused.distance(x, y, weights)
    with pytest.raises(ValueError, match="a euclidean:8\\+cosine:8 query has 16 values"):
        fused.distances(a, np.vstack([x]))


def test_pairwise_and_paired_agree_with_the_exact_distances() -> None:
    rng = np.random.default_rng(3)
    fused = parse_space("euclidean:6+cosine:10")
    a, b = rng.normal(size=(5, 16)), rng.normal(size=(7, 16))
    b[2, 6:] = 0.0  # a zero cosine part: distance 1 from everything, as in distances()
    weights = (0.7, 0.3)
    grid = fused.pairwise(a, b, weights)
    assert grid.shape == (5, 7)
    for i in range(5):
        assert grid[i] == pytest.approx(fused.distances(a[i], b, weights), abs=1e-9)
    pairs = fused.paired(a, b[:5], weights)
    assert pairs == pytest.approx(np.diag(grid[:, :5]), abs=1e-9)
    x = rng.normal(0, 0.1, size=(4, 128))
    assert DLIB_SPACE.pairwise(x, x).diagonal() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="paired rows"):
        fused.paired(a, b)
