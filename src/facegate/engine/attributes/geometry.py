"""Attributes measured from the 68 landmarks: EyesOpen, MouthOpen, Smile.

The points are first put in a face frame: rotated so the line between the eye centres is
horizontal (roll removed) and scaled so the eye centres are 1 apart (inter-ocular distance,
"iod"). Features, in that frame (iBUG 300-W numbering, ``engine.landmarks``):

* ``eye_aspect``: the eye aspect ratio of Soukupova and Cech (2016), the mean of
  ``(|p37-p41| + |p38-p40|) / (2 |p36-p39|)`` and the same for the other eye: the eyelids'
  opening over the eye's width. About 0.3 for open eyes, towards 0 as they close.
* ``lip_gap``: the mean gap between the inner lip contours (points 61-67, 62-66, 63-65) over
  the iod: 0 with the lips together.
* ``mouth_width``: the distance between the mouth corners (48, 54) over the iod (a smile
  widens the mouth).
* ``corner_lift``: how far the mouth corners sit above the middle of the lips (the mean of the
  outer lip centres 51 and 57), over the iod (a smile raises the corners).

Each attribute is a logistic model over some of these features, ``p = 1 / (1 + exp(-(w.f +
b)))``: the value is ``p >= 0.5`` and the confidence ``100 max(p, 1 - p)``, so the confidence
grows with the distance from the decision threshold and a face on the threshold gets 50. The
weights are fitted on faces labelled by a person and measured on held-out ones
(``bench/attributes_geometry.py``, which writes ``engine/calibration/attributes-geometry.json``
with the data, the command and the held-out accuracy; docs/attributes.md).

These are measurements of landmark geometry, only as good as the 68 points: dlib's model was
trained mostly on frontal faces with open eyes, so closed eyes and wide-open mouths are where
its points are least sure. A face turned more than :data:`MAX_YAW_DEG` away gets no estimate
(its far eye and mouth corner are foreshortened or hidden), nor does a face whose eyes coincide.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.engine.attributes.types import Attribute, FaceInput, Flag, Points68

CALIBRATION_FILE = "attributes-geometry.json"
MAX_YAW_DEG = 45.0
"""Beyond this yaw the geometric estimators give no value (module docstring)."""

FEATURES: tuple[str, ...] = ("eye_aspect", "lip_gap", "mouth_width", "corner_lift")


def face_frame(points: Points68) -> Points68 | None:
    """The points rotated so the eye centres are level, centred on their midpoint and scaled to
    an inter-ocular distance of 1 (None when the eyes coincide)."""
    left = points[36:42].mean(axis=0)
    right = points[42:48].mean(axis=0)
    delta = right - left
    iod = float(np.hypot(delta[0], delta[1]))
    if not math.isfinite(iod) or iod < 1e-6:
        return None
    cos, sin = delta[0] / iod, delta[1] / iod
    rotation = np.array([[cos, sin], [-sin, cos]])  # rotates the eye line onto +x
    framed: Points68 = ((points - (left + right) / 2.0) @ rotation.T) / iod
    return framed


def _dist(points: Points68, a: int, b: int) -> float:
    return float(np.hypot(*(points[a] - points[b])))


def _eye_aspect(p: Points68, first: int) -> float:
    p1, p2, p3, p4, p5, p6 = range(first, first + 6)
    width = _dist(p, p1, p4)
    if width < 1e-9:
        return 0.0
    return (_dist(p, p2, p6) + _dist(p, p3, p5)) / (2.0 * width)


def features(points: Points68) -> dict[str, float] | None:
    """The geometric features of one face (module docstring); None when the eyes coincide."""
    p = face_frame(points)
    if p is None:
        return None
    lip_gap = (_dist(p, 61, 67) + _dist(p, 62, 66) + _dist(p, 63, 65)) / 3.0
    centre_y = (p[51][1] + p[57][1]) / 2.0
    corners_y = (p[48][1] + p[54][1]) / 2.0
    return {
        "eye_aspect": (_eye_aspect(p, 36) + _eye_aspect(p, 42)) / 2.0,
        "lip_gap": lip_gap,
        "mouth_width": _dist(p, 48, 54),
        "corner_lift": float(centre_y - corners_y),  # y points down: corners above -> > 0
    }


@dataclass(frozen=True)
class LogisticRule:
    """``p = sigmoid(sum(w_i f_i) + bias)`` over named features (fitted, see module docstring)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, values: Mapping[str, float]) -> float:
        z = self.bias + sum(w * values[f] for f, w in zip(self.features, self.weights, strict=True))
        z = max(-60.0, min(60.0, z))
        return 1.0 / (1.0 + math.exp(-z))

    def flag(self, values: Mapping[str, float]) -> Flag:
        p = self.probability(values)
        return Flag(value=p >= 0.5, confidence_pct=100.0 * max(p, 1.0 - p))

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LogisticRule:
        names = tuple(str(f) for f in doc["features"])
        weights = tuple(float(w) for w in doc["weights"])
        if len(names) != len(weights) or not set(names) <= set(FEATURES):
            raise ValueError(f"a rule over unknown features or of the wrong length: {names}")
        return cls(names, weights, float(doc["bias"]))


@functools.cache
def calibration_document() -> Mapping[str, Any]:
    """The shipped fit (read once per process). Raises ``OSError`` / ``ValueError`` when absent
    or malformed: the estimators are then unavailable."""
    path = resources.files("facegate.engine").joinpath(f"calibration/{CALIBRATION_FILE}")
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc.get("rules"), dict) or not isinstance(doc.get("version"), str):
        raise ValueError(f"{CALIBRATION_FILE} is not a geometric attribute calibration")
    return doc


@dataclass(frozen=True)
class GeometricEstimator:
    """One attribute from the landmark features and a fitted :class:`LogisticRule`."""

    attribute: Attribute
    rule: LogisticRule
    calibration_version: str
    measured: Mapping[str, Any] = field(default_factory=dict)
    """The held-out measurements of the fit (``bench/attributes_geometry.py``)."""

    @property
    def version(self) -> str:
        return f"landmarks68.{self.attribute.lower()}.{self.calibration_version}"

    def estimate(self, face: FaceInput) -> Flag | None:
        if abs(face.pose.yaw_deg) > MAX_YAW_DEG:
            return None
        values = features(face.points68_px)
        return None if values is None else self.rule.flag(values)


def geometric(attribute: Attribute) -> GeometricEstimator:
    """The shipped estimator of ``attribute`` (``ValueError`` when the calibration has no rule
    for it: that attribute is then not estimated)."""
    doc = calibration_document()
    rule = doc["rules"].get(attribute.value)
    if rule is None:
        raise ValueError(f"{CALIBRATION_FILE} has no rule for {attribute}")
    return GeometricEstimator(
        attribute, LogisticRule.from_json(rule), doc["version"], dict(rule.get("measured", {}))
    )


def fit_logistic(
    x: Sequence[Sequence[float]] | npt.NDArray[np.floating[Any]],
    y: Sequence[bool] | npt.NDArray[np.bool_],
    *,
    l2: float = 1e-3,
    steps: int = 50,
) -> tuple[tuple[float, ...], float]:
    """Weights and bias of a logistic regression by Newton's method (a small L2 penalty keeps
    separable data finite). Features are standardised for the fit and the weights mapped back,
    so the result applies to raw feature values."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    mean, std = xs.mean(axis=0), xs.std(axis=0)
    std[std < 1e-12] = 1.0
    z = np.hstack([np.ones((len(xs), 1)), (xs - mean) / std])
    beta = np.zeros(z.shape[1])
    penalty = np.eye(z.shape[1]) * l2 * len(xs)
    penalty[0, 0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -60, 60)))
        gradient = z.T @ (p - ys) + penalty @ beta
        hessian = (z.T * (p * (1 - p))) @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    weights = beta[1:] / std
    bias = float(beta[0] - (weights * mean).sum())
    return tuple(float(w) for w in weights), bias
