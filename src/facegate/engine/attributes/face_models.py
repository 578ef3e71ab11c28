"""Attributes from the converted face models, on only when an operator opts in.

* **AgeRange** and **Gender** from ``faceres`` (HSE FaceRes, A. Savchenko): one run per face
  gives P(man) and a distribution over ages; both estimators read it (the run is shared through
  ``FaceInput.memo``).
* **Emotions** from ``emotion`` (oarriaga's mini-Xception, FER2013's seven classes).

The input is human's face crop (``face_square``: the box enlarged 1.4 times, square) resized by
``prepare_batch`` as the catalogue says (``faceres``: BGR 0-255 minus the ImageNet means, as
HSE's own code feeds it; ``emotion``: grayscale -1..1).

How outputs become Rekognition's values. Each rule was decided before any measurement, from the
upstream code or from the definition, and nothing was fitted on the audit data
(``facegate bias classifier --estimate ...``, docs/attributes.md):

* ``Gender``: Male when P(man) >= :data:`MALE_THRESHOLD` (0.6, HSE's ``is_male`` in
  ``facial_analysis.py``; human uses 0.5). ``Confidence`` re-centres the score on that threshold
  (:func:`gender_from_score`): 50 at the threshold, 100 at 0 or 1. It is the model's score, not
  a calibrated probability of being right.
* ``AgeRange``: ages are ``1 + index`` of the 100 outputs (HSE: ``min_age = 1``); ``Low`` and
  ``High`` are the distribution's quartiles (:data:`AGE_QUANTILES`): the model itself puts half
  its probability inside the range (:func:`age_range_from_distribution`). About 12 to 16 years
  wide on adults' faces; Rekognition's ranges are of that order.
* ``Emotions``: the softmax over (angry, disgust, fear, happy, sad, surprise, neutral) as
  ANGRY, DISGUSTED, FEAR, HAPPY, SAD, SURPRISED and CALM (neutral is the nearest of
  Rekognition's types), confidences ``100 p`` (summing to 100), most confident first as
  Rekognition orders them, so ``Emotions[0]['Type']`` is the top expression. **CONFUSED is
  left out**: no class of the model measures it, and a confidence of 0 would be a made-up claim
  that the face is certainly not confused (docs/attributes.md).

What the outputs are not: a gender identity, a person's age, a feeling (docs/attributes.md).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.engine.attributes.types import (
    AgeRange,
    Attribute,
    Emotion,
    FaceInput,
    FaceModels,
    Gender,
    ModelSource,
)
from facegate.engine.human_models import (
    LoadedModel,
    face_square,
    load_onnx_model,
    model_status,
    prepare_batch,
)

log = logging.getLogger("facegate.engine.attributes")

FACERES = "faceres"
EMOTION = "emotion"

MALE_THRESHOLD = 0.6
"""P(man) at or above which ``faceres`` says Male (HSE's ``is_male``: ``gender_preds >= 0.6``)."""

AGE_OFFSET_YEARS = 1
"""Age of the first of ``faceres``' 100 age outputs (HSE: ``min_age = 1``)."""

AGE_QUANTILES = (0.25, 0.75)
"""The quantiles of the age distribution that make ``AgeRange`` (Low, High)."""

EMOTION_TYPES = ("ANGRY", "DISGUSTED", "FEAR", "HAPPY", "SAD", "SURPRISED", "CALM")
"""Rekognition's type of each of the ``emotion`` model's classes, in the model's order (angry,
disgust, fear, happy, sad, surprise, neutral). No class gives CONFUSED."""

MEASUREMENTS_FILE = "attributes-models.json"

Floats = npt.NDArray[np.float32]


# --- rules -------------------------------------------------------------------------------------


def gender_from_score(p_man: float, threshold: float = MALE_THRESHOLD) -> Gender:
    """``Gender`` from P(man): Male at or above ``threshold``; the confidence is 50 at the
    threshold and grows linearly to 100 at 0 (Female) or 1 (Male)."""
    p = min(1.0, max(0.0, float(p_man)))
    if p >= threshold:
        return Gender("Male", 50.0 + 50.0 * (p - threshold) / (1.0 - threshold))
    return Gender("Female", 50.0 + 50.0 * (threshold - p) / threshold)


def age_range_from_distribution(
    distribution: npt.ArrayLike,
    quantiles: tuple[float, float] = AGE_QUANTILES,
    offset_years: int = AGE_OFFSET_YEARS,
) -> AgeRange:
    """``AgeRange`` from a distribution over ages ``offset_years + i``: Low and High are the
    smallest ages whose cumulative probability reaches each quantile. Raises ValueError for a
    distribution that is not finite, non-negative with a positive sum."""
    p = np.asarray(distribution, dtype=np.float64).reshape(-1)
    if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("not an age distribution")
    cdf = np.cumsum(p / p.sum())
    last = p.size - 1
    low, high = (min(int(np.searchsorted(cdf, q - 1e-12)), last) for q in quantiles)
    return AgeRange(offset_years + low, offset_years + high)


def emotions_from_probabilities(probabilities: npt.ArrayLike) -> tuple[Emotion, ...]:
    """The seven expressions with confidences ``100 p``, most confident first (ties by name)."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if p.size != len(EMOTION_TYPES) or not np.all(np.isfinite(p)):
        raise ValueError(f"expected {len(EMOTION_TYPES)} finite probabilities, got {p.size}")
    pct = np.clip(p, 0.0, 1.0) * 100.0
    pairs = sorted(zip(EMOTION_TYPES, pct, strict=True), key=lambda e: (-e[1], e[0]))
    return tuple(Emotion(name, float(value)) for name, value in pairs)


# --- loading -----------------------------------------------------------------------------------


class ModelLoader:
    """The :class:`~facegate.engine.attributes.types.ModelSource` of one engine: loads each
    enabled model once (verified by ``engine.human_models``) and hands the same session to every
    estimator that asks for it. Raises ``OSError`` with the reason for a model that is not
    enabled or not available."""

    def __init__(self, models: FaceModels, *, intra_op_threads: int = 1) -> None:
        self.models = models
        self.intra_op_threads = intra_op_threads
        self._loaded: dict[str, LoadedModel] = {}

    def load(self, name: str) -> LoadedModel:
        if name not in self.models.enabled:
            raise OSError(f"face model {name} is not enabled (FACEGATE_ATTRIBUTE_MODELS)")
        if name not in self._loaded:
            model = load_onnx_model(
                name,
                self.models.models_dir,
                intra_op_threads=self.intra_op_threads,
                allow_unpinned=self.models.allow_unpinned,
            )
            if model is None:
                status = model_status(
                    name, self.models.models_dir, allow_unpinned=self.models.allow_unpinned
                )
                raise OSError(f"face model {name}: {status.reason}")
            self._loaded[name] = model
        return self._loaded[name]


@functools.cache
def measurements() -> Mapping[str, Any]:
    """The shipped measurements of the model-backed attributes, by attribute
    (``engine/calibration/attributes-models.json``, from ``facegate bias classifier
    --estimate``); empty when the file is absent or unreadable."""
    path = resources.files("facegate.engine").joinpath(f"calibration/{MEASUREMENTS_FILE}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    attributes = doc.get("attributes") if isinstance(doc, dict) else None
    return attributes if isinstance(attributes, dict) else {}


def _measured(attribute: Attribute, version: str) -> Mapping[str, Any]:
    """The shipped measurement of ``attribute`` if it measured this very ``version``."""
    entry = measurements().get(attribute.value)
    if isinstance(entry, dict) and entry.get("version") == version:
        return entry
    return {}


# --- estimators --------------------------------------------------------------------------------


def _crop(face: FaceInput) -> npt.NDArray[np.uint8]:
    crop = face.memo.get("face_square")
    if crop is None:
        crop = face_square(face.box_px).crop(face.pixels)
        face.memo["face_square"] = crop
    return crop


def _outputs(model: LoadedModel, face: FaceInput) -> dict[str, Floats]:
    """``model``'s outputs for ``face``'s crop, computed once per face (``FaceInput.memo``)."""
    key = f"model:{model.spec.name}"
    out = face.memo.get(key)
    if out is None:
        out = model.run(prepare_batch(model.spec.input, [_crop(face)]))
        face.memo[key] = out
    return out


def _short(model: LoadedModel) -> str:
    return f"{model.spec.name}-{(model.status.sha256 or 'unknown')[:8]}"


@dataclass(frozen=True)
class AgeRangeEstimator:
    """AgeRange: the quartiles of ``faceres``' age distribution (module docstring)."""

    model: LoadedModel
    attribute: Attribute = Attribute.AGE_RANGE
    measured: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"{_short(self.model)}.age_range.q25-q75"

    def estimate(self, face: FaceInput) -> AgeRange:
        distribution = _outputs(self.model, face)["age_distribution"][0]
        return age_range_from_distribution(distribution)


@dataclass(frozen=True)
class GenderEstimator:
    """Gender: ``faceres``' P(man) against HSE's threshold 0.6 (module docstring)."""

    model: LoadedModel
    attribute: Attribute = Attribute.GENDER
    measured: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"{_short(self.model)}.gender.t0.6"

    def estimate(self, face: FaceInput) -> Gender:
        return gender_from_score(float(_outputs(self.model, face)["gender"][0, 0]))


@dataclass(frozen=True)
class EmotionsEstimator:
    """Emotions: the ``emotion`` model's seven expressions on Rekognition's types, no CONFUSED
    (module docstring)."""

    model: LoadedModel
    attribute: Attribute = Attribute.EMOTIONS
    measured: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"{_short(self.model)}.fer7.neutral-calm"

    def estimate(self, face: FaceInput) -> tuple[Emotion, ...]:
        return emotions_from_probabilities(_outputs(self.model, face)["probabilities"][0])


def _with_measurement(estimator: Any) -> Any:
    measured = _measured(estimator.attribute, estimator.version)
    return type(estimator)(estimator.model, measured=measured)


def make_age_range(models: ModelSource) -> AgeRangeEstimator:
    """The AgeRange estimator (``OSError`` when ``faceres`` is not enabled or available)."""
    estimator: AgeRangeEstimator = _with_measurement(AgeRangeEstimator(models.load(FACERES)))
    return estimator


def make_gender(models: ModelSource) -> GenderEstimator:
    """The Gender estimator (``OSError`` when ``faceres`` is not enabled or available)."""
    estimator: GenderEstimator = _with_measurement(GenderEstimator(models.load(FACERES)))
    return estimator


def make_emotions(models: ModelSource) -> EmotionsEstimator:
    """The Emotions estimator (``OSError`` when ``emotion`` is not enabled or available)."""
    estimator: EmotionsEstimator = _with_measurement(EmotionsEstimator(models.load(EMOTION)))
    return estimator
