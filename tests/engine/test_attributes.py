"""Facial attributes in the engine (issue 21): the landmark geometry, the fitted rules, the
registry (what is unavailable is left out, a bad value is never sent), and that the engine and
its worker processes estimate only what a request asks for."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from facegate.engine.attributes.geometry import (
    MAX_YAW_DEG,
    GeometricEstimator,
    LogisticRule,
    calibration_document,
    features,
    fit_logistic,
)
from facegate.engine.attributes.registry import (
    ESTIMATORS,
    AttributeRegistry,
    build_registry,
    valid,
)
from facegate.engine.attributes.types import (
    AgeRange,
    Attribute,
    AttributeValue,
    Emotion,
    EstimatorSpec,
    FaceInput,
    Flag,
    Gender,
)
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.pool import EnginePool
from facegate.engine.types import BoxPx, Pose
from facegate.operations import FACE_ATTRIBUTES

ALL = frozenset(FACE_ATTRIBUTES)
ESTIMATED = frozenset(
    {"EYES_OPEN", "MOUTH_OPEN", "SMILE", "EYEGLASSES", "SUNGLASSES", "BEARD", "MUSTACHE",
     "FACE_OCCLUDED", "AGE_RANGE", "GENDER"}
)  # fmt: skip


def _face(eye_open: float = 0.3, lip_gap: float = 0.0, corner_lift: float = 0.0) -> np.ndarray:
    """68 points of a schematic frontal face, eye centres at (-50, 0) and (50, 0) (iod 100):
    eye opening ``eye_open`` of the eye's width, lips apart by ``lip_gap`` iod, mouth corners
    ``corner_lift`` iod above the lips' middle."""
    p = np.zeros((68, 2))
    for first, cx in ((36, -50.0), (42, 50.0)):
        half_w, half_h = 15.0, 15.0 * eye_open
        p[first + 0] = (cx - half_w, 0)
        p[first + 3] = (cx + half_w, 0)
        p[first + 1] = (cx - 5, -half_h)
        p[first + 2] = (cx + 5, -half_h)
        p[first + 4] = (cx + 5, half_h)
        p[first + 5] = (cx - 5, half_h)
    mouth_y, gap = 90.0, lip_gap * 100.0
    p[48] = (-35, mouth_y - corner_lift * 100.0)
    p[54] = (35, mouth_y - corner_lift * 100.0)
    p[51] = (0, mouth_y - gap / 2 - 8)
    p[57] = (0, mouth_y + gap / 2 + 8)
    for i, x in zip((61, 62, 63), (-10, 0, 10), strict=True):
        p[i] = (x, mouth_y - gap / 2)
    for i, x in zip((67, 66, 65), (-10, 0, 10), strict=True):
        p[i] = (x, mouth_y + gap / 2)
    p[60], p[64] = (-30, mouth_y), (30, mouth_y)
    return p


def _rotate(
    points: np.ndarray, degrees: float, scale: float, shift: tuple[float, float]
) -> np.ndarray:
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved: np.ndarray = points @ rotation.T * scale + np.asarray(shift)
    return moved


def _input(points: np.ndarray, yaw: float = 0.0) -> FaceInput:
    return FaceInput(
        pixels=np.zeros((4, 4, 3), dtype=np.uint8),
        box_px=BoxPx(0, 0, 4, 4),
        points68_px=points,
        pose=Pose(0.0, yaw, 0.0),
    )


def test_features_measure_what_they_say() -> None:
    opened = features(_face(eye_open=0.3, lip_gap=0.2, corner_lift=0.1))
    assert opened is not None
    assert opened["eye_aspect"] == pytest.approx(0.3)
    assert opened["lip_gap"] == pytest.approx(0.2)
    assert opened["mouth_width"] == pytest.approx(0.7)
    assert opened["corner_lift"] == pytest.approx(0.1)
    closed = features(_face(eye_open=0.02))
    assert closed is not None
    assert closed["eye_aspect"] == pytest.approx(0.02)
    assert closed["lip_gap"] == pytest.approx(0.0)


def test_features_ignore_roll_scale_and_position() -> None:
    base = features(_face(eye_open=0.25, lip_gap=0.15, corner_lift=0.05))
    moved = features(
        _rotate(_face(eye_open=0.25, lip_gap=0.15, corner_lift=0.05), 25, 3.5, (400, 90))
    )
    assert base is not None
    assert moved is not None
    for name, value in base.items():
        assert moved[name] == pytest.approx(value, abs=1e-9), name


def test_no_features_when_the_eyes_coincide() -> None:
    assert features(np.zeros((68, 2))) is None


def test_shipped_rules_on_schematic_faces() -> None:
    doc = calibration_document()
    # the geometry rules: EyesOpen is served from them; MouthOpen and Smile from the
    # classifiers, which measured better (bench/attributes_compare.py)
    assert set(doc["rules"]) == {"EYES_OPEN", "MOUTH_OPEN", "SMILE"}
    assert doc["command"].startswith("python bench/attributes_geometry.py fit")
    eyes = GeometricEstimator(
        Attribute.EYES_OPEN, LogisticRule.from_json(doc["rules"]["EYES_OPEN"]), doc["version"]
    )
    open_eyes, shut_eyes = eyes.estimate(_input(_face(0.32))), eyes.estimate(_input(_face(0.03)))
    assert open_eyes is not None
    assert shut_eyes is not None
    assert open_eyes.value is True
    assert shut_eyes.value is False
    assert open_eyes.confidence_pct > 90
    assert shut_eyes.confidence_pct > 90
    # too far turned: no estimate rather than a foreshortened guess
    assert eyes.estimate(_input(_face(0.32), yaw=MAX_YAW_DEG + 1)) is None
    assert eyes.version == f"landmarks68.eyes_open.{doc['version']}"


def test_confidence_grows_with_the_distance_from_the_threshold() -> None:
    rule = LogisticRule(("eye_aspect",), (20.0,), -4.0)  # threshold at 0.2
    at = rule.flag({"eye_aspect": 0.2})
    near, far = rule.flag({"eye_aspect": 0.22}), rule.flag({"eye_aspect": 0.35})
    assert at.confidence_pct == pytest.approx(50.0)
    assert 50 < near.confidence_pct < far.confidence_pct <= 100
    assert near.value is True
    assert rule.flag({"eye_aspect": 0.1}).value is False


def test_fit_logistic_finds_the_threshold() -> None:
    rng = np.random.default_rng(21)
    x = rng.uniform(0.0, 0.4, size=(400, 1))
    y = x[:, 0] > 0.2
    (weight,), bias = fit_logistic(x, y)
    assert -bias / weight == pytest.approx(0.2, abs=0.01)


@dataclass(frozen=True)
class _Fixed:
    attribute: Attribute
    value: AttributeValue | None
    version: str = "fixed-1"

    def estimate(self, face: FaceInput) -> AttributeValue | None:
        return self.value


class _Broken:
    attribute = Attribute.SMILE
    version = "broken-1"

    def estimate(self, face: FaceInput) -> AttributeValue | None:
        raise RuntimeError("model exploded")


def _spec(attribute: Attribute, make: Callable[[], object]) -> EstimatorSpec:
    return EstimatorSpec(attribute, "test", lambda _: make())  # type: ignore[arg-type,return-value]


def test_registry_leaves_out_what_cannot_start(caplog: pytest.LogCaptureFixture) -> None:
    def missing() -> object:
        raise FileNotFoundError("age.onnx")

    registry = build_registry(
        [
            _spec(Attribute.AGE_RANGE, missing),
            _spec(Attribute.EYEGLASSES, lambda: _Fixed(Attribute.EYEGLASSES, Flag(True, 88.0))),
        ]
    )
    assert set(registry.available) == {Attribute.EYEGLASSES}
    assert "AGE_RANGE is unavailable" in caplog.text
    out = registry.estimate(_input(_face()), ALL)
    assert out.eyeglasses == Flag(True, 88.0)
    assert out.age_range is None
    assert out.estimated() == {Attribute.EYEGLASSES}
    # not asked for: not estimated
    assert registry.estimate(_input(_face()), frozenset({"SMILE"})).estimated() == frozenset()


def test_registry_sends_no_failed_or_malformed_value(caplog: pytest.LogCaptureFixture) -> None:
    registry = AttributeRegistry(
        [
            (_spec(Attribute.SMILE, _Broken), _Broken()),
            (
                _spec(Attribute.AGE_RANGE, object),
                _Fixed(Attribute.AGE_RANGE, AgeRange(40, 30)),
            ),
            (_spec(Attribute.GENDER, object), _Fixed(Attribute.GENDER, Gender("Other", 80.0))),
            (_spec(Attribute.EYES_OPEN, object), _Fixed(Attribute.EYES_OPEN, Flag(True, 101.0))),
            (
                _spec(Attribute.EMOTIONS, object),
                _Fixed(Attribute.EMOTIONS, (Emotion("HAPPY", 70.0), Emotion("CALM", 20.0))),
            ),
        ]
    )
    out = registry.estimate(_input(_face()), ALL)
    assert out.estimated() == {Attribute.EMOTIONS}
    assert "model exploded" in caplog.text


def test_registry_refuses_a_mislabelled_estimator() -> None:
    with pytest.raises(ValueError, match="estimates"):
        AttributeRegistry([(_spec(Attribute.SMILE, object), _Fixed(Attribute.BEARD, None))])


def test_valid_ranges() -> None:
    assert valid(Attribute.AGE_RANGE, AgeRange(25, 33))
    assert not valid(Attribute.AGE_RANGE, Flag(True, 90.0))
    assert not valid(Attribute.EMOTIONS, (Emotion("BORED", 50.0),))
    assert valid(Attribute.SMILE, Flag(False, 50.0))
    assert not valid(Attribute.SMILE, Flag(False, math.nan))


def test_every_shipped_estimator_starts() -> None:
    registry = build_registry()
    assert {a.value for a in registry.available} == ESTIMATED
    # by default AgeRange and Gender come from the descriptor models (faceres is opt-in)
    assert registry.available[Attribute.GENDER].version.startswith("dlib-descriptor.gender.")
    assert registry.available[Attribute.AGE_RANGE].model is None
    # at most one estimator per attribute runs no face model: the default is never ambiguous
    defaults = [s.attribute for s in ESTIMATORS if s.model is None]
    assert len(defaults) == len(set(defaults))


def test_engine_estimates_only_what_is_asked(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    data = sample_bytes("obama.jpg")
    plain = engine.analyze(data, descriptors=False)
    assert plain.faces[0].detected.attributes is None
    assert plain.attributes_unavailable == frozenset()
    rich = engine.analyze(data, descriptors=False, attributes=ALL)
    attributes = rich.faces[0].detected.attributes
    assert attributes is not None
    assert {a.value for a in attributes.estimated()} == ESTIMATED
    assert attributes.eyes_open is not None
    assert attributes.eyes_open.value is True
    assert rich.attributes_unavailable == ALL - ESTIMATED
    # the rest of the analysis does not change
    assert rich.faces[0].detected.box_px == plain.faces[0].detected.box_px
    smile = engine.analyze(data, descriptors=False, attributes=frozenset({"SMILE"}))
    only = smile.faces[0].detected.attributes
    assert only is not None
    assert only.estimated() == {Attribute.SMILE}
    assert only.smile == attributes.smile


def test_engine_configured_without_an_attribute(sample_bytes: Callable[[str], bytes]) -> None:
    engine = FaceEngine(EngineConfig(attributes=frozenset({"EYES_OPEN"})))
    rich = engine.analyze(sample_bytes("obama.jpg"), descriptors=False, attributes=ALL)
    attributes = rich.faces[0].detected.attributes
    assert attributes is not None
    assert attributes.estimated() == {Attribute.EYES_OPEN}


def test_pool_workers_estimate_as_the_engine_does(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    data = sample_bytes("two_people.jpg")
    with EnginePool(EngineConfig(), workers=1) as pool:
        pooled = pool.analyze(data, descriptors=False, attributes=ALL)
        plain = pool.analyze(data, descriptors=False)
    local = engine.analyze(data, descriptors=False, attributes=ALL)
    assert [f.detected.attributes for f in pooled.faces] == [
        f.detected.attributes for f in local.faces
    ]
    assert pooled.attributes_unavailable == local.attributes_unavailable
    assert all(f.detected.attributes is None for f in plain.faces)
