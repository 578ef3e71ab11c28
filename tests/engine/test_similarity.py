"""The distance -> Similarity mapping: anchors, monotonicity, inverse, vectorised form."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.engine.similarity import LOGISTIC_V0, LogisticSimilarity, euclidean


def test_documented_anchors() -> None:
    assert LOGISTIC_V0.version == "dlib-logistic-v0"
    assert LOGISTIC_V0.similarity_pct(0.6) == pytest.approx(80.0)
    assert LOGISTIC_V0.similarity_pct(0.4) == pytest.approx(99.0)
    assert LOGISTIC_V0.slope == pytest.approx(16.044, abs=1e-3)
    assert LOGISTIC_V0.midpoint == pytest.approx(0.6864, abs=1e-4)


def test_strictly_decreasing_and_bounded() -> None:
    d = np.linspace(0.0, 2.0, 401)
    s = LOGISTIC_V0.similarities_pct(d)
    assert np.all(np.diff(s) < 0)
    assert 0.0 < s[-1] < s[0] < 100.0
    assert LOGISTIC_V0.similarity_pct(1e6) == 0.0


def test_vectorised_matches_scalar() -> None:
    d = np.array([0.0, 0.33, 0.6, 0.85, 1.4])
    expected = [LOGISTIC_V0.similarity_pct(float(x)) for x in d]
    assert LOGISTIC_V0.similarities_pct(d) == pytest.approx(expected)


@pytest.mark.parametrize("pct", [50.0, 80.0, 90.0, 99.0, 99.9])
def test_distance_for_inverts(pct: float) -> None:
    assert LOGISTIC_V0.similarity_pct(LOGISTIC_V0.distance_for(pct)) == pytest.approx(pct)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="anchors"):
        LogisticSimilarity.from_anchors("x", 0.6, 99.0, 0.4, 80.0)
    with pytest.raises(ValueError, match="strictly between"):
        LOGISTIC_V0.distance_for(100.0)


def test_euclidean() -> None:
    a = np.zeros(128, dtype=np.float32)
    b = np.zeros(128, dtype=np.float32)
    b[0], b[1] = 3.0, 4.0
    assert euclidean(a, b) == 5.0
