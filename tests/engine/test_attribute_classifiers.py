"""The shipped attribute classifiers load and give the labelled answer on real faces.

The LFW faces below are of people held out of the fit (``identity_split``), labelled in
``bench/labels/lfw_attributes/manual_2026.csv`` and chosen for unambiguous labels: this is a
regression test of the shipped weights and the feature code, not a measurement (the measurement
is bench/attribute_fit.py; see docs/attribute_classifiers.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facegate.bias.attribute_data import FaceSet, extract_faces, lfw_identity
from facegate.bias.attribute_fit import identity_split
from facegate.engine.attribute_classifiers import (
    ATTRIBUTES,
    FEATURE_DIM,
    AttributeModels,
    chip_features,
    estimate,
    landmark_features,
)
from facegate.engine.core import FaceEngine
from tests.conftest import SHARED_DATA

LFW = SHARED_DATA / "lfw" / "images"

# image -> attributes present (every other attribute absent), as labelled.
KNOWN: dict[str, set[str]] = {
    "Bernard_Landry/Bernard_Landry_0002.jpg": {"eyeglasses", "eyes_open"},
    "Park_Na-kyong/Park_Na-kyong_0001.jpg": {"sunglasses", "smile", "eyes_open", "mouth_open"},
    "John_Belushi/John_Belushi_0001.jpg": {"beard", "mustache", "eyes_open"},
    "Arnold_Schwarzenegger/Arnold_Schwarzenegger_0009.jpg": {"smile", "eyes_open", "mouth_open"},
    "Barbara_Becker/Barbara_Becker_0001.jpg": {"eyes_open"},
}


@pytest.fixture(scope="module")
def models() -> AttributeModels:
    return AttributeModels.load()


@pytest.fixture(scope="module")
def known_faces(engine: FaceEngine) -> FaceSet:
    if not LFW.is_dir():
        pytest.fail(f"LFW images not found at {LFW}: tests need ../shared/data")
    return extract_faces(LFW, list(KNOWN), engine)


def test_shipped_models_load_with_every_attribute(models: AttributeModels) -> None:
    assert models.attributes == ATTRIBUTES
    assert models.version == "attributes-v1"
    assert models.document["feature_dim"] == FEATURE_DIM
    provenance = models.document["provenance"]
    assert provenance["command"] == "python bench/attribute_fit.py --write-model"
    assert set(provenance["held_out"]) == set(ATTRIBUTES)


def test_known_faces_are_held_out_people() -> None:
    assert identity_split([lfw_identity(p) for p in KNOWN]).all()


@pytest.mark.parametrize("image", sorted(KNOWN))
def test_labelled_lfw_faces(models: AttributeModels, known_faces: FaceSet, image: str) -> None:
    i = known_faces.paths.index(image)
    assert known_faces.found[i]
    found = models.estimate_all(
        known_faces.chips[i], known_faces.descriptors[i], known_faces.points68[i]
    )
    assert set(found) == set(ATTRIBUTES)
    present = {name for name, e in found.items() if e.value}
    assert present == KNOWN[image]
    for e in found.values():
        assert 50.0 <= e.confidence_pct <= 100.0
        assert e.value == (e.probability_pct >= 50.0)


def test_sample_photo_without_glasses_or_beard(
    models: AttributeModels, engine: FaceEngine, samples: Path
) -> None:
    faces = extract_faces(samples, ["obama.jpg"], engine)
    value, confidence = estimate(
        models, "eyeglasses", faces.chips[0], faces.descriptors[0], faces.points68[0]
    )
    assert (value, confidence > 90) == (False, True)
    for name in ("sunglasses", "beard", "mustache", "face_occluded"):
        assert not estimate(models, name, faces.chips[0], faces.descriptors[0])[0]


def test_missing_inputs_are_refused_not_guessed(
    models: AttributeModels, known_faces: FaceSet
) -> None:
    chip = known_faces.chips[0]
    x = models.features(chip)  # no descriptor, no landmarks
    with pytest.raises(ValueError, match="descriptor"):
        models.estimate("eyeglasses", x)
    with pytest.raises(ValueError, match="landmarks"):
        models.estimate("mouth_open", x)
    only_chip = models.estimate_all(chip)
    assert set(only_chip) == {n for n in ATTRIBUTES if models.needs(n) == ()}
    with pytest.raises(KeyError):
        models.estimate("hat", x)


def test_chip_must_be_the_aligned_chip() -> None:
    with pytest.raises(ValueError, match="150x150"):
        chip_features(np.zeros((100, 100, 3), dtype=np.uint8))


def test_landmark_ratios_ignore_position_scale_and_rotation(known_faces: FaceSet) -> None:
    points = known_faces.points68[0].astype(np.float64)
    angle = np.deg2rad(17.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 2.5 * points @ rotation.T + np.array([40.0, -13.0])
    np.testing.assert_allclose(landmark_features(moved), landmark_features(points), atol=1e-9)


def test_a_model_file_of_another_feature_layout_is_refused(tmp_path: Path) -> None:
    document = json.loads(
        (
            Path(__file__).resolve().parents[2]
            / "src/facegate/engine/calibration/attributes-v1.json"
        ).read_text()
    )
    document["feature_dim"] = 10
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="feature_dim"):
        AttributeModels.load(path)
