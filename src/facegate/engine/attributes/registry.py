"""The attribute estimators an engine can run, and running those a request asks for.

:data:`ESTIMATORS` is the one list of estimators: an estimator backed by a model (age, gender,
emotions, eye direction, eyeglasses, sunglasses, beard, mustache, occlusion) is added there as
an :class:`~facegate.engine.attributes.types.EstimatorSpec` whose ``make`` loads its model (for
ONNX models converted elsewhere, ``load_onnx_model(name)``) and returns an object with the
:class:`~facegate.engine.attributes.types.AttributeEstimator` Protocol. Nothing else changes: the
engine builds the registry once per process (:func:`build_registry`, in each worker's
``FaceEngine``), the service answers the attributes that are available, and the transparency page
lists them with their versions.

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
    Flag,
    Gender,
)

log = logging.getLogger("facegate.engine.attributes")

ESTIMATORS: tuple[EstimatorSpec, ...] = (
    EstimatorSpec(
        Attribute.EYES_OPEN,
        "eye aspect ratio of the 68 landmarks, logistic threshold fitted on labelled faces",
        lambda: geometric(Attribute.EYES_OPEN),
    ),
    *(
        EstimatorSpec(
            attribute,
            "logistic classifier over the aligned face chip, the descriptor and the landmarks, "
            "fitted on labelled LFW faces",
            functools.partial(classifier, attribute),
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
)
"""Every estimator facegate knows, at most one per attribute (the hook for new ones: module
docstring). EyesOpen from the landmark geometry; MouthOpen and Smile, which have both methods,
from the classifiers, which measured better on the same held-out people
(``bench/attributes_compare.py``). Not listed, hence never returned: AGE_RANGE, EMOTIONS,
EYE_DIRECTION, GENDER (their models are not in this version)."""


@dataclass(frozen=True)
class AvailableAttribute:
    """An attribute this engine estimates: its estimator's version and method, and what its
    estimator says was measured about it (an estimator may carry a ``measured`` mapping: data,
    accuracy, command; empty when it does not)."""

    attribute: Attribute
    version: str
    method: str
    measured: Mapping[str, Any] = field(default_factory=dict)


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


def build_registry(
    specs: Sequence[EstimatorSpec] = ESTIMATORS, enabled: frozenset[str] | None = None
) -> AttributeRegistry:
    """Make every estimator of ``specs`` (those in ``enabled`` only, when given); one that
    cannot be made is left out with one warning (module docstring)."""
    made: list[tuple[EstimatorSpec, AttributeEstimator]] = []
    for spec in specs:
        if enabled is not None and spec.attribute.value not in enabled:
            continue
        try:
            made.append((spec, spec.make()))
        except (OSError, ImportError, ValueError, KeyError) as exc:
            log.warning(
                "attribute %s is unavailable (%s: %s)", spec.attribute, type(exc).__name__, exc
            )
    return AttributeRegistry(made)


@functools.cache
def catalogue(enabled: frozenset[str] | None = None) -> tuple[AvailableAttribute, ...]:
    """The attributes an engine configured with ``enabled`` estimates (for the transparency
    page, in the server's own process): every estimator is made once in the calling process
    and kept for its life, so this costs what one engine's estimators cost, once."""
    return tuple(build_registry(enabled=enabled).available.values())
