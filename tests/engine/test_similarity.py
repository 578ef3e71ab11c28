"""The distance -> Similarity mapping: anchors, monotonicity, inverse, vectorised form."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from facegate.engine.matching import default_matcher
from facegate.engine.similarity import (
    LOGISTIC_V0,
    CalibratedSimilarity,
    LogisticSimilarity,
    PiecewiseSimilarity,
    calibration_document,
    default_similarity,
    euclidean,
    holdout_file_name,
    holdout_summary,
    scale_fmr,
    scale_similarity,
)


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


# --- the calibrated, piecewise-linear mapping ---------------------------------------------


def _piecewise() -> PiecewiseSimilarity:
    return PiecewiseSimilarity("t", (0.0, 0.4, 0.5, 1.5), (100.0, 99.0, 80.0, 0.0))


def test_piecewise_interpolates_and_inverts() -> None:
    m = _piecewise()
    assert m.similarity_pct(0.45) == pytest.approx(89.5)
    assert m.similarity_pct(0.0) == 100.0
    assert m.similarity_pct(2.0) == 0.0  # beyond the last knot
    for pct in (50.0, 80.0, 89.5, 99.0, 99.9):
        assert m.similarity_pct(m.distance_for(pct)) == pytest.approx(pct)
    d = np.linspace(0.0, 1.5, 301)
    assert np.all(np.diff(m.similarities_pct(d)) < 0)
    assert m.similarities_pct(d) == pytest.approx([m.similarity_pct(float(x)) for x in d])


@pytest.mark.parametrize(
    ("distances", "similarities"),
    [
        ((0.0, 0.5), (100.0, 10.0)),  # does not end at 0
        ((0.1, 0.5), (100.0, 0.0)),  # does not start at distance 0
        ((0.0, 0.5, 0.5, 1.0), (100.0, 90.0, 80.0, 0.0)),  # repeated distance
        ((0.0, 0.4, 0.5, 1.0), (100.0, 80.0, 90.0, 0.0)),  # similarity goes up
        ((0.0,), (100.0,)),
    ],
)
def test_piecewise_refuses_bad_knots(
    distances: tuple[float, ...], similarities: tuple[float, ...]
) -> None:
    with pytest.raises(ValueError, match="knot"):
        PiecewiseSimilarity("bad", distances, similarities)


def test_the_shipped_calibration_is_the_default_and_meets_its_scale() -> None:
    model = default_similarity()
    assert isinstance(model, CalibratedSimilarity)
    doc = calibration_document("dlib-resnet-v1")
    assert model.version == doc["version"]
    assert model.version.startswith("dlib-resnet-v1.")
    assert pickle.loads(pickle.dumps(model)).version == model.version  # travels to workers
    rows = {row["similarity_pct"]: row for row in doc["table"]}
    assert sorted(rows) == [80.0, 90.0, 95.0, 99.0, 99.9]
    for pct, row in rows.items():
        assert model.distance_for(pct) == pytest.approx(row["distance"], abs=1e-6)
        # held-out pooled FMR within a factor 2 of what the scale promises
        assert 0.5 * row["target_fmr"] < row["pooled_fmr"] < 2.0 * row["target_fmr"]
    # dlib's customary "same person" distance is far below Rekognition's default threshold now
    assert model.similarity_pct(0.6) < 80.0


def test_a_model_without_calibration_is_refused() -> None:
    with pytest.raises(FileNotFoundError):
        calibration_document("no-such-model")


@pytest.mark.parametrize(
    ("pct", "fmr"),
    [(100.0, 0.0), (99.9, 1e-5), (99.0, 1e-4), (90.0, 1e-3), (80.0, 1e-2), (70.0, 0.1)],
)
def test_scale_and_its_inverse(pct: float, fmr: float) -> None:
    assert scale_fmr(pct) == pytest.approx(fmr, rel=1e-9, abs=1e-15)
    assert scale_similarity(fmr) == pytest.approx(pct)


def test_scale_edges_and_who_promises_it() -> None:
    assert scale_fmr(50.0) == pytest.approx(0.1)  # below 70: the rate at 70, a lower bound
    assert scale_similarity(0.5) == 70.0
    assert scale_similarity(0.0) == 100.0
    for s in np.linspace(70.0, 100.0, 61):
        assert scale_similarity(scale_fmr(float(s))) == pytest.approx(float(s))
    assert CalibratedSimilarity().fmr_at(99.0) == pytest.approx(1e-4)
    assert CalibratedSimilarity().similarity_for_fmr(1e-3) == pytest.approx(90.0)
    assert LOGISTIC_V0.fmr_at(99.0) is None
    assert LOGISTIC_V0.similarity_for_fmr(1e-4) is None
    assert _piecewise().fmr_at(99.0) is None


def test_the_shipped_holdout_summary_checks_the_shipped_mapping() -> None:
    held = holdout_summary("dlib-resnet-v1", "cohort")
    assert held is not None
    assert held["similarity_version"] == default_matcher().version
    assert set(held["worst_held_out"]) == {"80", "90", "99"}
    for w in held["worst_held_out"].values():
        lo, hi = w["ci95_ratio"]
        assert lo <= w["ratio"] <= hi
        assert w["within_limit"] == (w["ratio"] <= held["ratio_limit"])
    assert holdout_summary("dlib-resnet-v1") is None  # the raw distance's mapping: not checked


def test_an_operators_holdout_summary_is_read_from_its_directory(tmp_path: Path) -> None:
    assert holdout_file_name("m", "cohort") == "m.cohort.holdout.json"
    assert holdout_summary("absent", "cohort", str(tmp_path)) is None
    (tmp_path / "m.cohort.holdout.json").write_text(json.dumps({"model_version": "m"}))
    assert holdout_summary("m", "cohort", str(tmp_path)) == {"model_version": "m"}
    (tmp_path / "n.holdout.json").write_text(json.dumps({"model_version": "m"}))
    with pytest.raises(ValueError, match="names 'm'"):
        holdout_summary("n", "", str(tmp_path))
