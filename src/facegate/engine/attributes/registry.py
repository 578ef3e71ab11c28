"""The attribute estimators an engine can run, and running those a request asks for.

:data:`ESTIMATORS` is the one list of estimators: an estimator is added there as an
:class:`~facegate.engine.attributes.types.EstimatorSpec` whose ``make`` loads what it needs (a
converted face model through the :class:`~facegate.engine.attributes.types.ModelSource` it is
given: ``models.load("faceres")``) and returns an object with the
:class:`~facegate.engine.attributes.types.AttributeEstimator` Protocol. Nothing else changes: the
engine builds the registry once per process (:func:`build_registry`, in each worker's
``FaceEngine``), the service answers the attributes that are available, and the transparency page
lists them with their versions.

An estimator that runs a converted face model (its spec names the ``model``) is made only when
the operator enabled that model (``FaceModels.enabled``, ``FACEGATE_ATTRIBUTE_MODELS``; off by
default: their training data carry research-only terms and their errors differ by group,
docs/attributes.md). Each model is loaded once per engine, however many attributes read it.

An attribute is **available** when its estimator's ``make`` succeeded in this engine; one that
is not (no model, no calibration) is left out of every answer, as Rekognition leaves out members
it does not return, and the pipeline logs and counts what was asked for but not estimated. Never
a made-up value: an attribute without a measured estimator is not in this list.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from facegate.engine.attributes.classifiers import classifier
from facegate.engine.attributes.demographics import (
    DescriptorAgeRange,
    DescriptorGender,
    shipped_model,
)
from facegate.engine.attributes.eye_direction import IRIS, make_eye_direction
from facegate.engine.attributes.face_models import (
    EMOTION,
    FACERES,
    ModelLoader,
    make_age_range,
    make_emotions,
    make_gender,
)
from facegate.engine.attributes.geometry import geometric
from facegate.engine.attributes.types import (
    AgeRange,
    Attribute,
    AttributeEstimator,
    AttributeValue,
    Emotion,
    EstimatorSpec,
    EyeDirection,
    FaceAttributes,
    FaceInput,
    FaceModels,
    Flag,
    Gender,
    ModelSource,
)

log = logging.getLogger("facegate.engine.attributes")


def _classifier(attribute: Attribute, _: ModelSource) -> AttributeEstimator:
    """The trained classifier of ``attribute`` (it runs no converted face model)."""
    return classifier(attribute)


ESTIMATORS: tuple[EstimatorSpec, ...] = (
    EstimatorSpec(
        Attribute.EYES_OPEN,
        "eye aspect ratio of the 68 landmarks, logistic threshold fitted on labelled faces",
        lambda _: geometric(Attribute.EYES_OPEN),
    ),
    *(
        EstimatorSpec(
            attribute,
            "logistic classifier over the aligned face chip, the descriptor and the landmarks, "
            "fitted on labelled LFW faces",
            functools.partial(_classifier, attribute),
        )
        for attribute in (
            Attribute.MOUTH_OPEN,
            Attribute.SMILE,
            Attribute.EYEGLASSES,
            Attribute.SUNGLASSES,
            Attribute.BEARD,
            Attribute.MUSTACHE,
            Attribute.FACE_OCCLUDED,
        )
    ),
    EstimatorSpec(
        Attribute.AGE_RANGE,
        "the quartiles of the age distribution of HSE FaceRes (faceres; age head trained on "
        "IMDB-WIKI), on the face square; opt-in",
        make_age_range,
        model=FACERES,
    ),
    EstimatorSpec(
        Attribute.GENDER,
        "P(man) of HSE FaceRes (faceres; gender head trained on IMDB-WIKI) against HSE's "
        "threshold 0.6, on the face square; opt-in",
        make_gender,
        model=FACERES,
    ),
    EstimatorSpec(
        Attribute.AGE_RANGE,
        "the quartiles of the age from logistic models over the dlib descriptor, fitted on "
        "FairFace val (CC BY 4.0); the default when faceres is off",
        lambda _: DescriptorAgeRange(shipped_model()),
    ),
    EstimatorSpec(
        Attribute.GENDER,
        "P(Male) of a logistic model over the dlib descriptor, fitted on FairFace val "
        "(CC BY 4.0), threshold 0.5; the default when faceres is off",
        lambda _: DescriptorGender(shipped_model()),
    ),
    EstimatorSpec(
        Attribute.EMOTIONS,
        "the 7 expressions of oarriaga's mini-Xception (emotion; trained on FER2013) on "
        "Rekognition's types, neutral as CALM, no CONFUSED; opt-in",
        make_emotions,
        model=EMOTION,
    ),
    EstimatorSpec(
        Attribute.EYE_DIRECTION,
        "the iris centres of MediaPipe Iris (iris) in the frame of the eye corners, turned into "
        "the eyes' rotation in the head with an anatomical eyeball model and the head pose; "
        "opt-in",
        make_eye_direction,
        model=IRIS,
    ),
)
"""Every estimator facegate knows, in order of preference: an engine uses the first of an
attribute's estimators that it can make (the hook for new ones: module docstring). EyesOpen
from the landmark geometry; MouthOpen and Smile, which have both methods, from the classifiers,
which measured better on the same held-out people (``bench/attributes_compare.py``); AgeRange
and Gender from ``faceres`` when the operator enables it, else from the descriptor models of
``attributes.demographics`` (on by default); Emotions and EyeDirection from converted face
models, opt-in (``FACEGATE_ATTRIBUTE_MODELS``)."""

NO_FACE_MODELS = FaceModels()
"""No converted face model enabled: the default (model-backed attributes are opt-in)."""

ATTRIBUTE_MODELS: frozenset[str] = frozenset(s.model for s in ESTIMATORS if s.model)
"""The face models that back an estimator: what ``FACEGATE_ATTRIBUTE_MODELS`` may name."""


@dataclass(frozen=True)
class AvailableAttribute:
    """An attribute this engine estimates: its estimator's version and method, and what its
    estimator says was measured about it (an estimator may carry a ``measured`` mapping: data,
    accuracy, command; empty when it does not)."""

    attribute: Attribute
    version: str
    method: str
    measured: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    """The converted face model it runs (None: the landmarks only)."""


class AttributeRegistry:
    """The estimators one engine loaded; asked per face for the attributes a request wants.

    Not thread-safe if an estimator is not (one registry per engine, one engine per process)."""

    def __init__(self, estimators: Iterable[tuple[EstimatorSpec, AttributeEstimator]] = ()):
        self._estimators: dict[Attribute, AttributeEstimator] = {}
        self._available: dict[Attribute, AvailableAttribute] = {}
        for spec, estimator in estimators:
            if spec.attribute in self._estimators:
                raise ValueError(f"two estimators for {spec.attribute}")
            if estimator.attribute is not spec.attribute:
                raise ValueError(f"{spec.attribute}'s estimator estimates {estimator.attribute}")
            self._estimators[spec.attribute] = estimator
            measured = getattr(estimator, "measured", None)
            self._available[spec.attribute] = AvailableAttribute(
                spec.attribute,
                estimator.version,
                spec.method,
                MappingProxyType(dict(measured)) if isinstance(measured, Mapping) else {},
                spec.model,
            )

    @property
    def available(self) -> Mapping[Attribute, AvailableAttribute]:
        """The attributes this engine estimates, with their versions."""
        return MappingProxyType(self._available)

    def estimate(self, face: FaceInput, wanted: frozenset[str]) -> FaceAttributes:
        """The attributes in ``wanted`` (Rekognition names, e.g. ``"EYES_OPEN"``) that are
        available, for one face; the others stay None. An estimator that fails on this face is
        logged and its attribute omitted (an estimate is never invented)."""
        values: dict[str, Any] = {}
        for attribute, estimator in self._estimators.items():
            if attribute.value not in wanted:
                continue
            try:
                value = estimator.estimate(face)
            except Exception:
                log.exception("attribute estimator %s failed", estimator.version)
                continue
            if value is None:
                continue
            if not valid(attribute, value):
                log.error("attribute estimator %s returned %r", estimator.version, value)
                continue
            values[attribute.lower()] = value
        return FaceAttributes(**values)


_EMOTIONS = frozenset(
    {"HAPPY", "SAD", "ANGRY", "CONFUSED", "DISGUSTED", "SURPRISED", "CALM", "UNKNOWN", "FEAR"}
)
"""Rekognition's ``EmotionName`` values."""


def _pct(value: float) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and 0.0 <= value <= 100.0


def _deg(value: float) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and -180.0 <= value <= 180.0


def valid(attribute: Attribute, value: AttributeValue) -> bool:
    """Whether ``value`` has the type and ranges Rekognition gives ``attribute`` (an estimator
    that returns anything else has its value dropped and logged, never sent)."""
    if attribute is Attribute.AGE_RANGE:
        return isinstance(value, AgeRange) and 0 <= value.low_years <= value.high_years <= 150
    if attribute is Attribute.GENDER:
        return (
            isinstance(value, Gender)
            and value.value in ("Male", "Female")
            and _pct(value.confidence_pct)
        )
    if attribute is Attribute.EMOTIONS:
        return isinstance(value, tuple) and all(
            isinstance(e, Emotion) and e.type_name in _EMOTIONS and _pct(e.confidence_pct)
            for e in value
        )
    if attribute is Attribute.EYE_DIRECTION:
        return (
            isinstance(value, EyeDirection)
            and _deg(value.yaw_deg)
            and _deg(value.pitch_deg)
            and _pct(value.confidence_pct)
        )
    return isinstance(value, Flag) and isinstance(value.value, bool) and _pct(value.confidence_pct)


def chosen_specs(
    models: frozenset[str], specs: Sequence[EstimatorSpec] = ESTIMATORS
) -> dict[Attribute, EstimatorSpec]:
    """Per attribute, the estimator an engine chooses when the face models ``models`` are
    enabled: the first of ``specs`` that runs no face model or an enabled one."""
    chosen: dict[Attribute, EstimatorSpec] = {}
    for spec in specs:
        if spec.model is None or spec.model in models:
            chosen.setdefault(spec.attribute, spec)
    return chosen


def build_registry(
    specs: Sequence[EstimatorSpec] = ESTIMATORS,
    enabled: frozenset[str] | None = None,
    models: FaceModels = NO_FACE_MODELS,
) -> AttributeRegistry:
    """Make, per attribute, the first estimator of ``specs`` that applies (in ``enabled``, when
    given; one that runs a face model only when ``models`` enables it); if it cannot be made,
    the attribute is left out with one warning (module docstring), never answered by a less
    preferred estimator the operator did not choose."""
    made: list[tuple[EstimatorSpec, AttributeEstimator]] = []
    loader = ModelLoader(models)
    # a model-backed estimator not enabled (FACEGATE_ATTRIBUTE_MODELS) is off, not a fault; the
    # chosen one that cannot be made leaves its attribute out, never answered by another
    # estimator than the one the operator enabled
    for spec in chosen_specs(models.enabled, specs).values():
        if enabled is not None and spec.attribute.value not in enabled:
            continue
        try:
            made.append((spec, spec.make(loader)))
        except (OSError, ImportError, ValueError, KeyError) as exc:
            log.warning(
                "attribute %s is unavailable (%s: %s)", spec.attribute, type(exc).__name__, exc
            )
    return AttributeRegistry(made)


@functools.cache
def catalogue(
    enabled: frozenset[str] | None = None, models: FaceModels = NO_FACE_MODELS
) -> tuple[AvailableAttribute, ...]:
    """The attributes an engine configured with ``enabled`` and ``models`` estimates (for the
    transparency page, in the server's own process): every estimator is made once in the
    calling process and kept for its life, so this costs what one engine's estimators cost
    (the enabled face models' sessions included), once."""
    return tuple(build_registry(enabled=enabled, models=models).available.values())
