"""Gender and AgeRange by default: logistic models over the face's dlib descriptor.

Rekognition returns ``Gender`` and ``AgeRange`` with ``Attributes=["ALL"]``, and client code
written for it reads them without checking (``FaceDetails[0].AgeRange.Low``). facegate's other
estimators of these two run ``faceres``, whose training data (IMDB-WIKI) carry research-only
terms, so they are opt-in. These are on by default because everything they are made of has
terms an operator can accept: dlib's descriptor (the one every face already gets) and weights
fitted on FairFace val (CC BY 4.0) by ``bench/attribute_demographics.py``
(``bias/demographic_fit.py`` states the method). When an operator enables ``faceres``
(``FACEGATE_ATTRIBUTE_MODELS``), its estimators answer instead (``attributes.registry``).

- **Gender**: ``Male`` when P(Male) >= 0.5, else ``Female``; ``Confidence`` is the probability
  of the value given, 50-100. A visual estimate of presented gender, not identity.
- **AgeRange**: one logistic model per FairFace age band edge gives P(age >= edge); with 0 at
  0 years and 1 at :data:`AGE_MAX_YEARS` they are the age's distribution function at the
  edges, made monotone, read linearly between edges. ``Low`` and ``High`` are its quartiles
  (floor and ceiling, whole years).

Measured per race x gender group on FairFace's held-out half, on LFW and with each race left out
of the fit: docs/attributes.md and the shipped file's ``measured``. Their errors differ by
group, as every such classifier's do; the policy packs may drop or refuse them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.engine.attributes.types import AgeRange, Attribute, FaceInput, Gender

FloatVector = npt.NDArray[np.float64]
FloatMatrix = npt.NDArray[np.float64]

FORMAT = "facegate-attribute-demographics/1"
CALIBRATION_FILE = "attributes-demographics.json"
AGE_BANDS: tuple[str, ...] = (
    "0-2",
    "3-9",
    "10-19",
    "20-29",
    "30-39",
    "40-49",
    "50-59",
    "60-69",
    "more than 70",
)
"""FairFace's age bands, in order."""
AGE_MAX_YEARS = 90.0
"""Where the last band ("more than 70") is taken to end."""
AGE_EDGES_YEARS: tuple[float, ...] = (0.0, 3.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0)
"""Each band's lower edge (band ``i`` is ``[edge i, edge i+1)``, the last ends at
:data:`AGE_MAX_YEARS`)."""
DESCRIPTOR_DIM = 128


def _sigmoid(z: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * z))


@dataclass(frozen=True)
class DemographicModel:
    """The fitted weights: standardisation of the descriptor, the P(Male) model and one
    P(age >= edge) model per inner band edge (rows of ``age_weights``)."""

    version: str
    mean: FloatVector
    scale: FloatVector
    gender_weights: FloatVector
    gender_bias: float
    age_weights: FloatMatrix
    age_biases: FloatVector
    measured: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = len(self.mean)
        if (
            len(self.scale) != d
            or len(self.gender_weights) != d
            or self.age_weights.shape != (len(AGE_BANDS) - 1, d)
            or len(self.age_biases) != len(AGE_BANDS) - 1
            or not np.all(self.scale > 0)
        ):
            raise ValueError("demographic model: inconsistent shapes or scales")

    def _z(self, descriptor: FloatVector) -> FloatVector:
        x = np.asarray(descriptor, dtype=np.float64)
        if x.shape != self.mean.shape or not np.all(np.isfinite(x)):
            raise ValueError("demographic model: not a descriptor of the fitted length")
        z: FloatVector = (x - self.mean) / self.scale
        return z

    def p_male(self, descriptor: FloatVector) -> float:
        """P(Male) of one descriptor."""
        return _sigmoid(float(self._z(descriptor) @ self.gender_weights) + self.gender_bias)

    def age_cdf(self, descriptor: FloatVector) -> list[float]:
        """P(age < edge) at every edge of :data:`AGE_EDGES_YEARS` and at :data:`AGE_MAX_YEARS`
        (0 at the first, 1 at the last), non-decreasing."""
        z = self._z(descriptor)
        above = [
            _sigmoid(float(z @ w) + float(b))
            for w, b in zip(self.age_weights, self.age_biases, strict=True)
        ]
        cdf = [0.0]
        for p in above:
            cdf.append(max(cdf[-1], 1.0 - p))
        cdf.append(1.0)
        return cdf

    def age_quartiles(self, descriptor: FloatVector) -> tuple[float, float, float]:
        """The 25th, 50th and 75th percentiles of the age (years)."""
        cdf = self.age_cdf(descriptor)
        edges = (*AGE_EDGES_YEARS, AGE_MAX_YEARS)
        return (
            age_quantile(cdf, edges, 0.25),
            age_quantile(cdf, edges, 0.5),
            age_quantile(cdf, edges, 0.75),
        )

    def to_document(self) -> dict[str, Any]:
        """The shipped file's weights (:func:`load_document` reads them back)."""
        return {
            "format": FORMAT,
            "version": self.version,
            "descriptor": f"dlib-resnet-v1 ({DESCRIPTOR_DIM} values)",
            "age_bands": list(AGE_BANDS),
            "age_edges_years": list(AGE_EDGES_YEARS),
            "age_max_years": AGE_MAX_YEARS,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "gender": {"weights": self.gender_weights.tolist(), "bias": self.gender_bias},
            "age": {"weights": self.age_weights.tolist(), "biases": self.age_biases.tolist()},
        }


def age_quantile(cdf: list[float], edges: tuple[float, ...], q: float) -> float:
    """The age at which the piecewise-linear distribution function (``cdf[i]`` at
    ``edges[i]``) reaches ``q``."""
    for i in range(1, len(edges)):
        if cdf[i] >= q:
            lo, hi = cdf[i - 1], cdf[i]
            frac = (q - lo) / (hi - lo) if hi > lo else 0.5
            return edges[i - 1] + (edges[i] - edges[i - 1]) * frac
    return edges[-1]


def load_document(doc: Mapping[str, Any]) -> DemographicModel:
    """A :class:`DemographicModel` from a shipped document (``ValueError`` if malformed)."""
    try:
        if doc["format"] != FORMAT or tuple(doc["age_bands"]) != AGE_BANDS:
            raise ValueError(f"not a {FORMAT} document")
        return DemographicModel(
            version=str(doc["version"]),
            mean=np.asarray(doc["mean"], dtype=np.float64),
            scale=np.asarray(doc["scale"], dtype=np.float64),
            gender_weights=np.asarray(doc["gender"]["weights"], dtype=np.float64),
            gender_bias=float(doc["gender"]["bias"]),
            age_weights=np.asarray(doc["age"]["weights"], dtype=np.float64),
            age_biases=np.asarray(doc["age"]["biases"], dtype=np.float64),
            measured=dict(doc.get("measured", {})),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{CALIBRATION_FILE}: malformed ({exc})") from exc


def shipped_model() -> DemographicModel:
    """The shipped model (``engine/calibration/attributes-demographics.json``)."""
    path = resources.files("facegate.engine").joinpath(f"calibration/{CALIBRATION_FILE}")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{CALIBRATION_FILE}: not an object")
    return load_document(doc)


def _descriptor(face: FaceInput) -> FloatVector | None:
    if face.descriptor is None:
        return None
    vector: FloatVector = np.asarray(face.descriptor(), dtype=np.float64)
    return vector if vector.shape == (DESCRIPTOR_DIM,) else None


@dataclass(frozen=True)
class DescriptorGender:
    """Gender from the descriptor (module docstring)."""

    model: DemographicModel
    attribute: Attribute = Attribute.GENDER

    @property
    def version(self) -> str:
        return f"dlib-descriptor.gender.{self.model.version}"

    @property
    def measured(self) -> Mapping[str, Any]:
        return dict(self.model.measured.get("gender_summary", {}))

    def estimate(self, face: FaceInput) -> Gender | None:
        descriptor = _descriptor(face)
        if descriptor is None:
            return None
        p = self.model.p_male(descriptor)
        return Gender("Male" if p >= 0.5 else "Female", 100.0 * max(p, 1.0 - p))


@dataclass(frozen=True)
class DescriptorAgeRange:
    """AgeRange from the descriptor: the quartiles of the age (module docstring)."""

    model: DemographicModel
    attribute: Attribute = Attribute.AGE_RANGE

    @property
    def version(self) -> str:
        return f"dlib-descriptor.age_range.q25-q75.{self.model.version}"

    @property
    def measured(self) -> Mapping[str, Any]:
        return dict(self.model.measured.get("age_summary", {}))

    def estimate(self, face: FaceInput) -> AgeRange | None:
        descriptor = _descriptor(face)
        if descriptor is None:
            return None
        low, _, high = self.model.age_quartiles(descriptor)
        low_years = max(0, math.floor(low))
        return AgeRange(low_years, max(low_years, math.ceil(high)))
