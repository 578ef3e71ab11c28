"""Rekognition's 30 named landmarks from dlib's 68 points, in the right places."""

from __future__ import annotations

from collections.abc import Callable

from facegate.engine.core import FaceEngine
from facegate.engine.landmarks import REKOGNITION_LANDMARKS

# Rekognition's LandmarkType enum (botocore service model, rekognition 2016-06-27).
REKOGNITION_LANDMARK_TYPES = {
    "eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight", "leftEyeBrowLeft",
    "leftEyeBrowRight", "leftEyeBrowUp", "rightEyeBrowLeft", "rightEyeBrowRight",
    "rightEyeBrowUp", "leftEyeLeft", "leftEyeRight", "leftEyeUp", "leftEyeDown",
    "rightEyeLeft", "rightEyeRight", "rightEyeUp", "rightEyeDown", "noseLeft", "noseRight",
    "mouthUp", "mouthDown", "leftPupil", "rightPupil", "upperJawlineLeft", "midJawlineLeft",
    "chinBottom", "midJawlineRight", "upperJawlineRight",
}  # fmt: skip


def test_mapping_covers_every_rekognition_type_once() -> None:
    names = [name for name, _ in REKOGNITION_LANDMARKS]
    assert len(names) == 30
    assert set(names) == REKOGNITION_LANDMARK_TYPES
    assert all(0 <= i < 68 for _, idx in REKOGNITION_LANDMARKS for i in idx)


def test_landmarks_are_placed_anatomically(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    image = engine.decode(sample_bytes("obama.jpg"))
    (face,) = engine.detect(image)
    lm = {m.name: (m.x_ratio, m.y_ratio) for m in face.landmarks}
    box = face.box_ratio
    # Every landmark lies in (a slightly enlarged) face box.
    for x, y in lm.values():
        assert box.left - 0.2 * box.width < x < box.left + 1.2 * box.width
        assert box.top - 0.2 * box.height < y < box.top + 1.3 * box.height
    # Viewer's left/right, eyes above nose above mouth above chin.
    assert lm["eyeLeft"][0] < lm["nose"][0] < lm["eyeRight"][0]
    assert lm["mouthLeft"][0] < lm["mouthRight"][0]
    assert lm["eyeLeft"][1] < lm["nose"][1] < lm["mouthUp"][1] < lm["mouthDown"][1]
    assert lm["mouthDown"][1] < lm["chinBottom"][1]
    assert lm["leftEyeBrowUp"][1] < lm["eyeLeft"][1]
    assert lm["leftEyeLeft"][0] < lm["leftEyeRight"][0] < lm["rightEyeLeft"][0]
    assert lm["upperJawlineLeft"][0] < lm["chinBottom"][0] < lm["upperJawlineRight"][0]
    assert len(face.points5_px) == 5
