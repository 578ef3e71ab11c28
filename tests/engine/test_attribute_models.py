"""The model-backed attributes (issue 21): AgeRange and Gender from faceres, Emotions from emotion.

The rules that turn the models' outputs into Rekognition's values; the opt-in (no model runs
unless FaceModels enables it, and a model that is enabled but missing leaves its attributes
unavailable, never invented); faceres running once per face for two attributes; and the
estimators on real sample photos (skipped when the converted models are not set up)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facegate.engine.attributes.face_models import (
    AGE_QUANTILES,
    EMOTION,
    EMOTION_TYPES,
    FACERES,
    MALE_THRESHOLD,
    ModelLoader,
    age_range_from_distribution,
    emotions_from_probabilities,
    gender_from_score,
)
from facegate.engine.attributes.registry import ATTRIBUTE_MODELS, build_registry, valid
from facegate.engine.attributes.types import AgeRange, Attribute, FaceModels, Gender
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.human_models import model_status
from facegate.engine.pool import EnginePool
from facegate.operations import FACE_ATTRIBUTES

ALL = frozenset(FACE_ATTRIBUTES)
MODELS = FaceModels(enabled=frozenset({FACERES, EMOTION}))
MODEL_ATTRIBUTES = {Attribute.AGE_RANGE, Attribute.GENDER, Attribute.EMOTIONS}

needs_models = pytest.mark.skipif(
    not all(model_status(m).available for m in (FACERES, EMOTION)),
    reason="the converted face models are not set up (python3 tools/dev.py; docs/models.md)",
)


# --- the rules -----------------------------------------------------------------------------------


def test_gender_threshold_is_hses_and_confidence_is_50_at_it() -> None:
    assert MALE_THRESHOLD == 0.6
    assert gender_from_score(0.6) == Gender("Male", 50.0)
    assert gender_from_score(1.0) == Gender("Male", 100.0)
    assert gender_from_score(0.0) == Gender("Female", 100.0)
    assert gender_from_score(0.55).value == "Female"  # below HSE's 0.6, though above 0.5
    assert gender_from_score(0.3).value == "Female"
    assert gender_from_score(0.3).confidence_pct == pytest.approx(75.0)
    assert gender_from_score(0.8).value == "Male"
    assert gender_from_score(0.8).confidence_pct == pytest.approx(75.0)
    for p in np.linspace(0, 1, 41):
        assert valid(Attribute.GENDER, gender_from_score(float(p)))


def test_age_range_is_the_quartiles_of_ages_one_plus_index() -> None:
    assert AGE_QUANTILES == (0.25, 0.75)
    point = np.zeros(100)
    point[29] = 1.0  # all mass on index 29 = age 30 (HSE: min_age 1)
    assert age_range_from_distribution(point) == AgeRange(30, 30)
    uniform = np.full(100, 0.01)  # ages 1..100: quartiles 25 and 75
    assert age_range_from_distribution(uniform) == AgeRange(25, 75)
    two = np.zeros(100)
    two[[19, 49]] = 0.5  # ages 20 and 50, half each
    assert age_range_from_distribution(two) == AgeRange(20, 50)
    unnormalised = np.zeros(100)
    unnormalised[[9, 10, 11, 12]] = 2.0  # scaled mass: normalised first
    assert age_range_from_distribution(unnormalised) == AgeRange(10, 12)
    for bad in (np.zeros(100), np.full(100, np.nan), -np.ones(100), np.zeros(0)):
        with pytest.raises(ValueError, match="not an age distribution"):
            age_range_from_distribution(bad)


def test_emotions_map_fer_to_rekognition_most_confident_first_without_confused() -> None:
    p = np.array([0.05, 0.01, 0.04, 0.60, 0.10, 0.05, 0.15])
    emotions = emotions_from_probabilities(p)
    assert [e.type_name for e in emotions] == [
        "HAPPY", "CALM", "SAD", "ANGRY", "SURPRISED", "FEAR", "DISGUSTED"
    ]  # fmt: skip
    assert emotions[0].confidence_pct == pytest.approx(60.0)
    assert sum(e.confidence_pct for e in emotions) == pytest.approx(100.0)
    assert "CONFUSED" not in {e.type_name for e in emotions}
    assert set(EMOTION_TYPES) == {e.type_name for e in emotions}
    assert valid(Attribute.EMOTIONS, emotions)
    with pytest.raises(ValueError, match="expected 7 finite probabilities"):
        emotions_from_probabilities(np.ones(8) / 8)


# --- opt-in --------------------------------------------------------------------------------------


def test_model_attributes_are_off_unless_enabled() -> None:
    assert {FACERES, EMOTION, "iris"} == ATTRIBUTE_MODELS
    off = build_registry()
    assert not (MODEL_ATTRIBUTES | {Attribute.EYE_DIRECTION}) & set(off.available)
    with pytest.raises(OSError, match="not enabled"):
        ModelLoader(FaceModels()).load(FACERES)


def test_an_enabled_model_that_is_missing_leaves_its_attributes_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    registry = build_registry(models=FaceModels(enabled=MODELS.enabled, models_dir=tmp_path))
    model_backed = {Attribute.AGE_RANGE, Attribute.GENDER, Attribute.EMOTIONS}
    assert not set(registry.available) & model_backed
    assert Attribute.EYES_OPEN in registry.available  # the others are unaffected
    assert "AGE_RANGE is unavailable" in caplog.text
    assert "no converted models" in caplog.text


# --- on real photos ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rich_engine() -> FaceEngine:
    return FaceEngine(EngineConfig(face_models=MODELS))


def _attributes(engine: FaceEngine, data: bytes, wanted: frozenset[str] = ALL) -> list[Any]:
    analysis = engine.analyze(data, descriptors=False, attributes=wanted)
    return [f.detected.attributes for f in analysis.faces]


@needs_models
def test_every_model_attribute_starts_once_enabled(rich_engine: FaceEngine) -> None:
    available = rich_engine.attributes.available
    assert set(available) >= MODEL_ATTRIBUTES
    assert available[Attribute.GENDER].model == FACERES
    assert available[Attribute.EMOTIONS].model == EMOTION
    assert available[Attribute.AGE_RANGE].version.startswith("faceres-87f6a7dc.")
    assert rich_engine.unavailable(ALL) == {"EYE_DIRECTION"}


@needs_models
@pytest.mark.parametrize(
    ("name", "gender", "ages"),
    [
        # Barack Obama, photographed 2008-2012 (aged 47-51)
        ("obama.jpg", "Male", (47, 51)),
        ("obama2.jpg", "Male", (47, 51)),
        # Joe Biden, photographed as Vice President (aged 66-70)
        ("biden.jpg", "Male", (66, 70)),
        # Eileen Collins's NASA portrait
        ("astronaut.png", "Female", None),
        ("bbt/amy1.png", "Female", None),
        ("bbt/penny1.png", "Female", None),
        ("bbt/leonard1.png", "Male", None),
    ],
)
def test_gender_and_a_plausible_age_range_on_sample_photos(
    rich_engine: FaceEngine,
    sample_bytes: Callable[[str], bytes],
    name: str,
    gender: str,
    ages: tuple[int, int] | None,
) -> None:
    (face, *_) = _attributes(rich_engine, sample_bytes(name))
    assert face.gender.value == gender, name
    assert 50.0 <= face.gender.confidence_pct <= 100.0
    age = face.age_range
    assert 0 <= age.low_years <= age.high_years <= 100
    assert 5 <= age.high_years - age.low_years <= 25, age  # a range, not a point, not a shrug
    if ages is not None:  # the range overlaps the age the person had when photographed
        assert age.low_years <= ages[1], (name, age)
        assert age.high_years >= ages[0], (name, age)


@needs_models
def test_emotions_on_a_smiling_face(
    rich_engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    (face,) = _attributes(rich_engine, sample_bytes("obama.jpg"))
    emotions = face.emotions
    assert emotions[0].type_name == "HAPPY"  # Emotions[0] is the top expression
    assert emotions[0].confidence_pct > 90
    assert len(emotions) == 7
    assert "CONFUSED" not in {e.type_name for e in emotions}
    assert sum(e.confidence_pct for e in emotions) == pytest.approx(100.0, abs=1e-3)
    assert face.smile.value is True  # the landmark Smile agrees


@needs_models
def test_faceres_runs_once_per_face_for_age_and_gender(
    rich_engine: FaceEngine, sample_bytes: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ModelLoader(MODELS).load(FACERES)
    estimators = rich_engine.attributes._estimators
    faceres = estimators[Attribute.GENDER].model  # type: ignore[attr-defined]
    assert estimators[Attribute.AGE_RANGE].model is faceres  # type: ignore[attr-defined]
    assert model is not faceres  # another engine's loader, another session
    calls: list[int] = []
    real = faceres.run

    def counting(batch: Any) -> Any:
        calls.append(len(batch))
        return real(batch)

    monkeypatch.setattr(faceres, "run", counting)
    faces = _attributes(
        rich_engine, sample_bytes("two_people.jpg"), frozenset({"AGE_RANGE", "GENDER"})
    )
    assert len(faces) == 2
    assert all(f.gender and f.age_range for f in faces)
    assert calls == [1, 1]  # one run per face, both attributes read it
    calls.clear()
    _attributes(rich_engine, sample_bytes("obama.jpg"), frozenset({"SMILE", "EMOTIONS"}))
    assert calls == []  # not asked for: not run


@needs_models
def test_worker_processes_answer_as_the_engine(
    rich_engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    data = sample_bytes("two_people.jpg")
    expected = _attributes(rich_engine, data)
    with EnginePool(EngineConfig(face_models=MODELS), 1) as pool:
        analysis = pool.submit(data, descriptors=False, attributes=ALL).result()
    assert [f.detected.attributes for f in analysis.faces] == expected


@needs_models
def test_the_shipped_measurements_are_of_these_very_versions(rich_engine: FaceEngine) -> None:
    """A changed model, rule or crop changes the version; its old measurement is then not
    published for it (bench/attribute_audit.py --write measures it again)."""
    available = rich_engine.attributes.available
    for attribute in MODEL_ATTRIBUTES:
        measured = available[attribute].measured
        assert measured["version"] == available[attribute].version
        assert measured["summary"]
    gender = available[Attribute.GENDER].measured
    assert "34.7%" in gender["summary"]
    assert "31.37%" in gender["summary"]
    assert gender["worst_group"]["n"] >= 300
