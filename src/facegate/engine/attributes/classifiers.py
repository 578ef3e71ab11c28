"""Attributes from the trained classifiers of :mod:`facegate.engine.attribute_classifiers`.

Eyeglasses, Sunglasses, Beard, Mustache, FaceOccluded, Smile and MouthOpen: logistic models over
the aligned face chip (the one the descriptor network sees), the 128-d descriptor and the 68
landmarks, fitted and measured on held-out LFW people (``bench/attribute_fit.py``,
docs/attribute_classifiers.md). Smile and MouthOpen are taken from these classifiers rather than
the landmark geometry rules, and EyesOpen from the geometry rule, by a comparison on the same
held-out people (``bench/attributes_compare.py``, docs/attributes.md).

The features of a face are computed once and shared by its attributes (``FaceInput.memo``); the
chip and the descriptor are the engine's own (``FaceInput.chip`` / ``FaceInput.descriptor``),
computed only when an attribute asks for them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facegate.engine.attribute_classifiers import AttributeModels, FloatVector
from facegate.engine.attributes.types import Attribute, FaceInput, Flag

NAMES: Mapping[Attribute, str] = {
    Attribute.EYEGLASSES: "eyeglasses",
    Attribute.SUNGLASSES: "sunglasses",
    Attribute.BEARD: "beard",
    Attribute.MUSTACHE: "mustache",
    Attribute.FACE_OCCLUDED: "face_occluded",
    Attribute.SMILE: "smile",
    Attribute.MOUTH_OPEN: "mouth_open",
}
"""The attributes served by these classifiers, and each one's model name."""

_FEATURES = "attribute_classifiers.features"


@functools.cache
def shipped_models() -> AttributeModels:
    """The shipped classifiers, loaded once per process."""
    return AttributeModels.load()


@dataclass(frozen=True)
class ClassifierEstimator:
    """One attribute from its classifier (:class:`AttributeModels`)."""

    attribute: Attribute
    models: AttributeModels
    measured: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return NAMES[self.attribute]

    @property
    def version(self) -> str:
        return f"{self.models.version}.{self.name}"

    def estimate(self, face: FaceInput) -> Flag | None:
        if face.chip is None:  # the engine gave no way to align the face: no estimate
            return None
        features = face.memo.get(_FEATURES)
        if features is None:
            descriptor = face.descriptor() if face.descriptor is not None else None
            features = self.models.features(face.chip(), descriptor, face.points68_px)
            face.memo[_FEATURES] = features
        x: FloatVector = np.asarray(features, dtype=np.float64)
        try:
            result = self.models.estimate(self.name, x)
        except ValueError:  # an input this model needs is missing for this face
            return None
        return Flag(bool(result.value), float(result.confidence_pct))


def classifier(attribute: Attribute) -> ClassifierEstimator:
    """The shipped estimator of ``attribute`` (``KeyError`` if the shipped models have none)."""
    models = shipped_models()
    name = NAMES[attribute]
    if name not in models.models:
        raise KeyError(f"the shipped attribute classifiers have no model for {name}")
    held_out = models.document.get("provenance", {}).get("held_out", {}).get(name, {})
    return ClassifierEstimator(attribute, models, dict(held_out))
