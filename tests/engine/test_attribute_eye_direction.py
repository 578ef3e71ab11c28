"""EyeDirection (issue 21): the iris model and the eyeball model.

The geometry (offsets in the eye's frame, the eyeball model inverted exactly, signs), the two
eyes' agreement as Confidence, the opt-in (no estimate unless ``iris`` is enabled), and the
estimator on real photos (skipped when the converted models are not set up): Congress portraits
look into the camera, so the eyes' direction in the camera's frame (EyeDirection + Pose) is
near 0; obama2.jpg's eyes visibly look to the image's left, beyond where his head points; a
mirror image gets the opposite yaw."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.engine.attributes.eye_direction import (
    IRIS,
    EyeballModel,
    EyeOffset,
    calibration_document,
    combine,
    eye_angles,
    eye_offset,
)
from facegate.engine.attributes.registry import ATTRIBUTE_MODELS, build_registry, valid
from facegate.engine.attributes.types import Attribute, EyeDirection, FaceModels
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.human_models import model_status
from facegate.engine.types import Pose

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SAMPLES = DATA / "samples"
CONGRESS = DATA / "congress_2015" / "images"
WANTED = frozenset({"EYE_DIRECTION"})

needs_iris = pytest.mark.skipif(
    not model_status(IRIS).available,
    reason="the converted face models are not set up (python3 tools/dev.py; docs/models.md)",
)


def _forward(yaw_deg: float, head_deg: float, model: EyeballModel) -> float:
    """The offset the eyeball model predicts for an eye turned ``yaw_deg`` in a head turned
    ``head_deg`` (the module docstring's projection), rest offset included."""
    y, h = math.radians(yaw_deg), math.radians(head_deg)
    seen_mm = model.pupil_radius_mm * math.sin(y + h) - model.corner_depth_yaw_mm * math.sin(h)
    return model.rest_u + seen_mm / (model.eye_width_mm * math.cos(h))


# --- geometry ----------------------------------------------------------------------------------


def test_offset_is_in_the_eyes_frame_whatever_its_roll_and_size() -> None:
    level = eye_offset((0.0, 0.0), (30.0, 0.0), (18.0, -3.0))
    assert level is not None
    assert (level.u, level.v) == pytest.approx((0.1, 0.1))  # right and up
    for angle in (-40.0, 15.0, 90.0):
        a = math.radians(angle)
        rotate = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        corners = (rotate @ [0.0, 0.0], rotate @ [60.0, 0.0])
        iris = rotate @ [36.0, -6.0]  # the same eye, twice the size, turned
        turned = eye_offset(*corners, iris)
        assert turned is not None
        assert (turned.u, turned.v) == pytest.approx((0.1, 0.1))
    assert eye_offset((5.0, 5.0), (5.0, 5.0), (5.0, 5.0)) is None
    assert eye_offset((0.0, 0.0), (30.0, 0.0), (float("nan"), 0.0)) is None


def test_the_eyeball_model_is_inverted_exactly() -> None:
    model = EyeballModel(corner_depth_yaw_mm=3.0, rest_u=0.03, rest_v=0.06)
    for head in (-40.0, -10.0, 0.0, 25.0):
        for eye in (-30.0, -5.0, 0.0, 12.0, 30.0):
            u = _forward(eye, head, model)
            yaw, _ = eye_angles(EyeOffset(u, model.rest_v), head, 0.0, model)
            assert yaw == pytest.approx(eye, abs=1e-9)


def test_signs_follow_pose() -> None:
    model = EyeballModel(corner_depth_yaw_mm=4.0, corner_depth_pitch_mm=4.0)
    right, up = eye_angles(EyeOffset(0.1, 0.1), 0.0, 0.0, model)
    assert right > 0  # iris towards the image's right
    assert up > 0  # and top
    assert eye_angles(EyeOffset(0.0, 0.0), 0.0, 0.0, model) == (0.0, 0.0)
    # eyes fixed on the camera while the head turns right: the eyes turn left in the head
    yaw, _ = eye_angles(EyeOffset(_forward(-20.0, 20.0, model), 0.0), 20.0, 0.0, model)
    assert yaw == pytest.approx(-20.0)
    # an offset beyond the eyeball saturates at 90 degrees, never a math error
    assert eye_angles(EyeOffset(5.0, -5.0), 0.0, 0.0, model) == (90.0, -90.0)


def test_confidence_is_the_two_eyes_agreement() -> None:
    assert combine([(10.0, -5.0), (10.0, -5.0)]) == EyeDirection(10.0, -5.0, 100.0)
    half = combine([(0.0, 0.0), (15.0, 0.0)])
    assert half.yaw_deg == 7.5
    assert half.confidence_pct == pytest.approx(50.0)
    assert combine([(-20.0, 0.0), (20.0, 0.0)]).confidence_pct == 0.0
    assert combine([(3.0, 4.0)]).confidence_pct == 0.0  # one eye: nothing to agree with
    assert valid(Attribute.EYE_DIRECTION, combine([(-90.0, 90.0), (90.0, -90.0)]))


def test_the_shipped_calibration_says_how_it_was_measured() -> None:
    doc = calibration_document()
    assert abs(doc["rest"]["u"]) < 0.2
    assert abs(doc["rest"]["v"]) < 0.2
    assert 0.0 <= doc["corner_depth_mm"]["yaw"] <= 8.0  # millimetres, as anatomy allows
    assert 0.0 <= doc["corner_depth_mm"]["pitch"] <= 8.0
    held_out = doc["measured"]["held_out"]
    assert held_out["faces"] >= 300
    assert doc["measured"]["split"]["fit"] + held_out["faces"] <= 879
    assert "bench/attribute_eye_direction.py" in doc["command"]


# --- opt-in ------------------------------------------------------------------------------------


def test_iris_is_an_attribute_model_and_off_by_default() -> None:
    assert IRIS in ATTRIBUTE_MODELS
    assert Attribute.EYE_DIRECTION not in build_registry().available
    absent = FaceModels(enabled=frozenset({IRIS}), models_dir=Path("/nonexistent"))
    assert Attribute.EYE_DIRECTION not in build_registry(models=absent).available


# --- real photos -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine(EngineConfig(face_models=FaceModels(enabled=frozenset({IRIS}))))


def _directions(engine: FaceEngine, data: bytes) -> list[tuple[EyeDirection | None, Pose]]:
    analysis = engine.analyze(data, descriptors=False, attributes=WANTED)
    out = []
    for face in analysis.faces:
        attributes = face.detected.attributes
        out.append((None if attributes is None else attributes.eye_direction, face.detected.pose))
    return out


def _mirrored(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        out = io.BytesIO()
        im.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(out, format="PNG")
    return out.getvalue()


@needs_iris
def test_estimated_once_enabled(engine: FaceEngine) -> None:
    available = engine.attributes.available[Attribute.EYE_DIRECTION]
    assert available.model == IRIS
    assert available.version.startswith("iris-40e37c70.eyeball-")
    assert "held_out" in available.measured


@needs_iris
def test_congress_portraits_look_into_the_camera(engine: FaceEngine) -> None:
    # 24 portraits spread over the alphabet: most of them are in the bench's held-out half
    paths = sorted(CONGRESS.glob("*.jpg"))[::37][:24]
    camera_yaw, camera_pitch, head_yaw = [], [], []
    for path in paths:
        ((direction, pose),) = _directions(engine, path.read_bytes())[:1]
        if direction is None:
            continue  # eyes called closed
        assert valid(Attribute.EYE_DIRECTION, direction)
        camera_yaw.append(direction.yaw_deg + pose.yaw_deg)
        camera_pitch.append(direction.pitch_deg + pose.pitch_deg)
        head_yaw.append(abs(pose.yaw_deg))
    assert len(camera_yaw) >= 20
    # looking into the lens: the eyes' direction in the camera's frame is near 0, much nearer
    # than the head's own direction
    assert float(np.mean(np.abs(camera_yaw))) < 6.0
    assert float(np.mean(np.abs(camera_pitch))) < 8.0
    assert float(np.mean(np.abs(camera_yaw))) < float(np.mean(head_yaw)) / 1.5


@needs_iris
def test_averted_eyes_and_their_mirror_image(engine: FaceEngine) -> None:
    data = (SAMPLES / "obama2.jpg").read_bytes()
    ((direction, pose),) = _directions(engine, data)
    assert direction is not None
    # speaking, he looks to the image's left, further than his head turns (visible in the photo)
    assert pose.yaw_deg < -15
    assert direction.yaw_deg < 0
    assert direction.yaw_deg + pose.yaw_deg < -25
    ((mirrored, _),) = _directions(engine, _mirrored(data))
    assert mirrored is not None
    assert mirrored.yaw_deg == pytest.approx(-direction.yaw_deg, abs=6.0)
    assert mirrored.pitch_deg == pytest.approx(direction.pitch_deg, abs=6.0)


@needs_iris
def test_no_direction_for_closed_eyes(engine: FaceEngine) -> None:
    # group_t1.jpg: two of the players have their lids lowered over their cards, which the
    # EyesOpen rule calls closed: they get no EyeDirection; the others get one
    faces = _directions(engine, (SAMPLES / "group_t1.jpg").read_bytes())
    assert sum(d is None for d, _ in faces) >= 2
    assert sum(d is not None for d, _ in faces) >= 2
    assert all(d is None or valid(Attribute.EYE_DIRECTION, d) for d, _ in faces)
