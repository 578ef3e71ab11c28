"""Fitting the attribute classifiers: the identity split, the solver, the measures, and that a
fit on a small real subset is deterministic and loads as the engine's model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facegate.bias.attribute_data import (
    FaceSet,
    extract_faces,
    lfw_identity,
    merge_labels,
    read_labels,
)
from facegate.bias.attribute_fit import (
    fit_models,
    identity_split,
    measure,
    model_document,
    newton_logistic,
)
from facegate.engine.attribute_classifiers import AttributeModels
from facegate.engine.core import FaceEngine
from tests.conftest import SHARED_DATA

LABELS = Path(__file__).resolve().parents[2] / "bench" / "labels" / "lfw_attributes"


def test_identity_split_keeps_a_person_on_one_side() -> None:
    people = [f"Person_{i}" for i in range(300)]
    rows = [p for p in people for _ in range(3)]
    held = identity_split(rows)
    by_person = {p: {bool(h) for r, h in zip(rows, held, strict=True) if r == p} for p in people}
    assert all(len(sides) == 1 for sides in by_person.values())
    assert 0.25 < held.mean() < 0.42  # one third by hash
    assert (identity_split(rows) == held).all()  # stable


def test_newton_logistic_is_deterministic_and_finds_the_direction() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 6))
    y = (x @ np.array([2.0, -1.0, 0, 0, 0, 0.5]) + rng.normal(scale=0.5, size=400)) > 0
    w1, b1 = newton_logistic(x, y, 1.0)
    w2, b2 = newton_logistic(x, y, 1.0)
    assert np.array_equal(w1, w2)
    assert b1 == b2
    assert w1[0] > 1.0
    assert w1[1] < -0.5
    assert abs(w1[2]) < 0.5


def test_measure_counts_and_interval() -> None:
    truth = np.array([True] * 10 + [False] * 90)
    predicted = np.array([True] * 6 + [False] * 4 + [False] * 88 + [True] * 2)
    m = measure(truth, predicted)
    assert (m.n, m.positives, m.correct) == (100, 10, 94)
    assert m.recall_present == 0.6
    assert m.recall_absent == 88 / 90
    assert m.balanced_accuracy == pytest.approx((0.6 + 88 / 90) / 2)
    low, high = m.accuracy_ci or (0, 0)
    assert low < 0.94 < high
    assert high - low < 0.12


def test_labels_must_be_one_zero_or_empty(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("image,beard\na/a_0001.jpg,1\nb/b_0001.jpg,\nc/c_0001.jpg,0\n")
    table = read_labels(path)
    assert table.values["beard"] == {"a/a_0001.jpg": True, "c/c_0001.jpg": False}
    path.write_text("image,beard\na/a_0001.jpg,yes\n")
    with pytest.raises(ValueError, match="must be 1, 0 or empty"):
        read_labels(path)


@pytest.fixture(scope="module")
def small_subset(engine: FaceEngine) -> tuple[FaceSet, list[Path]]:
    """The first 90 manually labelled images (alphabetically) and the label files (the
    project's own, committed under bench/labels)."""
    files = [LABELS / "manual_2026.csv"]
    images = sorted(read_labels(files[0]).images())[:90]
    return extract_faces(SHARED_DATA / "lfw" / "images", images, engine), files


@pytest.mark.slow
def test_fit_on_a_small_subset_is_deterministic_and_loads(
    small_subset: tuple[FaceSet, list[Path]], tmp_path: Path
) -> None:
    faces, files = small_subset
    labels = merge_labels([read_labels(f) for f in files])
    first = fit_models(faces, labels, components=20)
    second = fit_models(faces, labels, components=20)
    for name, shipped in first.shipped.items():
        assert np.array_equal(shipped.weights, second.shipped[name].weights)
        assert shipped.bias == second.shipped[name].bias
    # held-out people are never fitted on
    held = identity_split([lfw_identity(p) for p in faces.paths])
    assert first.provenance["held_out_people"] == len(
        {lfw_identity(p) for p, h in zip(faces.paths, held, strict=True) if h}
    )
    document = model_document("test", first.mean, first.scale, first.shipped, {"command": "x"})
    path = tmp_path / "model.json"
    path.write_text(json.dumps(document))
    models = AttributeModels.load(path)
    i = 0
    est = models.estimate_all(faces.chips[i], faces.descriptors[i], faces.points68[i])
    assert set(est) == set(first.shipped)
