"""Measured facial-attribute classifiers: Eyeglasses, Sunglasses, Beard, Mustache, FaceOccluded,
Smile, EyesOpen, MouthOpen, each a logistic regression over features of one face.

Inputs are what the engine already computes for every face: the 150x150 chip of ``engine.align``
(the one the descriptor network sees), its 128-d descriptor, and dlib's 68 landmarks. The
features are fixed arithmetic in numpy (no model download, no extra dependency):

- a histogram of oriented gradients of the grey chip (10x10-pixel cells, 9 unsigned orientation
  bins, each cell normalised by the gradient energy of its 3x3 neighbourhood): glasses frames,
  lens edges, beard texture and teeth are edges at fixed places of an aligned chip;
- the mean and spread of brightness and colour in four bands of the chip (eyes, nose, mouth,
  chin): dark lenses and dark beards are darker than the cheeks at the same height;
- the descriptor (identity-linked attributes such as glasses and beards are partly encoded in
  it; expression is not, by design of the network);
- nine ratios of the 68 landmarks (eye and lip openness, mouth width, corner lift).

Each classifier uses some of these groups (``LogisticModel.uses``) and refuses to answer when one
of its inputs is missing. The weights (``calibration/attributes-v1.json``) were fitted by
``bench/attribute_fit.py`` on labelled LFW faces and measured on people the fit never saw; the
file records the command and the held-out accuracy of each classifier with its interval. Read
docs/attribute_classifiers.md before relying on a value: the labels are few and mostly from one
annotator, rare attributes are barely better than the majority answer, and what was not measured
(other populations, image sources) is not promised.

Usage::

    models = AttributeModels.load()
    x = models.features(chip, descriptor, points68)   # once per face
    estimate = models.estimate("eyeglasses", x)        # value, confidence_pct (Rekognition's)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.engine.align import CHIP_SIZE_PX
from facegate.engine.image import RGBImage

MODEL_FORMAT = "facegate-attribute-classifiers-v1"
DEFAULT_MODEL_FILE = "attributes-v1.json"

ATTRIBUTES: tuple[str, ...] = (
    "eyeglasses",
    "sunglasses",
    "beard",
    "mustache",
    "face_occluded",
    "smile",
    "eyes_open",
    "mouth_open",
)
"""The attributes, in snake_case; Rekognition's names are the PascalCase forms
(``Eyeglasses``, ``FaceOccluded`` ...), mapped at the wire."""

CELL_PX = 10
ORIENTATION_BINS = 9
# Horizontal bands of the 150-px chip (rows), for the brightness and colour statistics. With
# dlib's alignment (padding 0.25) the eyes sit near row 45 (the darkest rows of the mean LFW
# chip), the nose tip near 75, the mouth near 105 and the chin at the bottom edge.
BANDS_PX: tuple[tuple[int, int], ...] = ((30, 60), (60, 85), (85, 120), (120, 150))
CENTRE_COLUMNS_PX = (25, 125)

FloatVector = npt.NDArray[np.float64]


def hog_features(gray: npt.NDArray[np.float64]) -> FloatVector:
    """Histogram of oriented gradients of a square grey image whose side is a multiple of
    ``CELL_PX``: (side/CELL_PX)^2 cells x ``ORIENTATION_BINS`` values, each cell divided by the
    root gradient energy of its 3x3 cell neighbourhood."""
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, 1:-1] = gray[:, 2:] - gray[:, :-2]
    gy[1:-1, :] = gray[2:, :] - gray[:-2, :]
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), math.pi)  # unsigned orientation in [0, pi)
    position = angle / math.pi * ORIENTATION_BINS
    low = np.floor(position).astype(np.int64) % ORIENTATION_BINS
    high = (low + 1) % ORIENTATION_BINS
    frac = position - np.floor(position)
    cells = gray.shape[0] // CELL_PX
    cell_index = (np.arange(gray.shape[0]) // CELL_PX)[:, None] * cells + (
        np.arange(gray.shape[1]) // CELL_PX
    )[None, :]
    hist = np.zeros(cells * cells * ORIENTATION_BINS)
    np.add.at(hist, (cell_index * ORIENTATION_BINS + low).ravel(), (magnitude * (1 - frac)).ravel())
    np.add.at(hist, (cell_index * ORIENTATION_BINS + high).ravel(), (magnitude * frac).ravel())
    grid = hist.reshape(cells, cells, ORIENTATION_BINS)
    energy = (grid**2).sum(axis=2)
    padded = np.pad(energy, 1, mode="edge")
    local = sum(padded[dy : dy + cells, dx : dx + cells] for dy in range(3) for dx in range(3))
    normalised = grid / np.sqrt(local + 1e-3)[:, :, None]
    return np.asarray(normalised.ravel(), dtype=np.float64)


def band_statistics(rgb: npt.NDArray[np.float64]) -> FloatVector:
    """Mean and standard deviation of grey, and mean of each colour channel minus grey, in each
    of ``BANDS_PX`` (central columns), each band's grey mean also relative to the whole chip's."""
    gray = rgb.mean(axis=2)
    left, right = CENTRE_COLUMNS_PX
    overall = gray[:, left:right].mean()
    values: list[float] = []
    for top, bottom in BANDS_PX:
        band = rgb[top:bottom, left:right]
        g = gray[top:bottom, left:right]
        values += [float(g.mean()), float(g.std()), float(g.mean() - overall)]
        values += [float(band[:, :, c].mean() - g.mean()) for c in range(3)]
    return np.asarray(values, dtype=np.float64)


def chip_features(chip: RGBImage) -> FloatVector:
    """The chip's feature vector (HOG, then band statistics); pixel values scaled to 0-1."""
    if chip.shape != (CHIP_SIZE_PX, CHIP_SIZE_PX, 3):
        raise ValueError(f"expected a {CHIP_SIZE_PX}x{CHIP_SIZE_PX} RGB chip, got {chip.shape}")
    rgb = np.asarray(chip, dtype=np.float64) / 255.0
    return np.concatenate([hog_features(rgb.mean(axis=2)), band_statistics(rgb)])


def landmark_features(points68: npt.ArrayLike) -> FloatVector:
    """Ratios of dlib's 68 points (iBUG numbering) that open eyes and mouths change: eye aspect
    ratios (lid gap over eye width, each eye and the smaller), inner-lip gap over mouth width,
    outer-lip height over mouth width, mouth width, mouth-corner lift and lip gaps over the
    distance between the outer eye corners. Invariant to position, scale and in-plane rotation,
    so image pixels and chip pixels give the same values."""
    p = np.asarray(points68, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"expected 68 (x, y) points, got shape {p.shape}")

    def dist(a: int, b: int) -> float:
        return float(np.hypot(*(p[a] - p[b])))

    eyes = dist(36, 45) + 1e-6
    left = (dist(37, 41) + dist(38, 40)) / (2 * dist(36, 39) + 1e-6)
    right = (dist(43, 47) + dist(44, 46)) / (2 * dist(42, 45) + 1e-6)
    inner = (dist(61, 67) + dist(62, 66) + dist(63, 65)) / (3 * dist(60, 64) + 1e-6)
    outer = dist(51, 57) / (dist(48, 54) + 1e-6)
    # corner lift along the face's vertical axis (perpendicular to the eye line)
    ex, ey = (p[45] - p[36]) / eyes
    corners = (p[48] + p[54]) / 2 - (p[51] + p[57]) / 2
    lift = float(-(corners[0] * -ey + corners[1] * ex)) / eyes
    return np.array(
        [
            left,
            right,
            min(left, right),
            inner,
            outer,
            dist(48, 54) / eyes,
            lift,
            dist(62, 66) / eyes,
            dist(51, 57) / eyes,
        ]
    )


CHIP_DIM = (CHIP_SIZE_PX // CELL_PX) ** 2 * ORIENTATION_BINS + 6 * len(BANDS_PX)
DESCRIPTOR_DIM = 128
LANDMARK_DIM = 9
FEATURE_GROUPS: dict[str, tuple[int, int]] = {
    "chip": (0, CHIP_DIM),
    "descriptor": (CHIP_DIM, CHIP_DIM + DESCRIPTOR_DIM),
    "landmarks": (CHIP_DIM + DESCRIPTOR_DIM, CHIP_DIM + DESCRIPTOR_DIM + LANDMARK_DIM),
}
"""Column ranges of the feature vector: chip features, the descriptor, the landmark ratios."""
FEATURE_DIM = FEATURE_GROUPS["landmarks"][1]


def feature_vector(
    chip: RGBImage,
    descriptor: npt.ArrayLike | None = None,
    points68: npt.ArrayLike | None = None,
) -> FloatVector:
    """The full feature vector of one face; a group whose input is absent is NaN (a model that
    uses it refuses, the others ignore it)."""
    x = np.full(FEATURE_DIM, np.nan)
    lo, hi = FEATURE_GROUPS["chip"]
    x[lo:hi] = chip_features(chip)
    if descriptor is not None:
        desc = np.asarray(descriptor, dtype=np.float64)
        if desc.shape != (DESCRIPTOR_DIM,):
            raise ValueError(f"expected a {DESCRIPTOR_DIM}-d descriptor, got {desc.shape}")
        lo, hi = FEATURE_GROUPS["descriptor"]
        x[lo:hi] = desc
    if points68 is not None:
        lo, hi = FEATURE_GROUPS["landmarks"]
        x[lo:hi] = landmark_features(points68)
    return x


@dataclass(frozen=True)
class AttributeEstimate:
    """One attribute of one face: ``value`` and Rekognition's ``Confidence`` in that value
    (50-100), from the classifier's probability ``probability_pct`` that the attribute is
    present (0-100)."""

    value: bool
    confidence_pct: float
    probability_pct: float


@dataclass(frozen=True)
class LogisticModel:
    """``p = sigmoid(w . (x - mean) / scale + bias)``; ``value = p >= threshold``. ``uses``
    names the feature groups with non-zero weights (``FEATURE_GROUPS``)."""

    mean: FloatVector
    scale: FloatVector
    weights: FloatVector
    bias: float
    threshold: float
    uses: tuple[str, ...]

    def probability(self, x: FloatVector) -> float:
        z = float(((x - self.mean) / self.scale) @ self.weights + self.bias)
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def estimate(self, x: FloatVector) -> AttributeEstimate:
        p = self.probability(x)
        value = p >= self.threshold
        return AttributeEstimate(
            value=value,
            confidence_pct=100.0 * (p if value else 1.0 - p),
            probability_pct=100.0 * p,
        )


def _vector(values: Any, n: int, what: str) -> FloatVector:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{what}: expected {n} values, got shape {array.shape}")
    return array


class AttributeModels:
    """The fitted classifiers, loaded once (a few hundred kB of JSON) and shared read-only."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        if document.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a {MODEL_FORMAT} document")
        n = int(document["feature_dim"])
        if n != FEATURE_DIM:
            raise ValueError(f"feature_dim {n} does not match this code's {FEATURE_DIM}")
        self.version: str = str(document["version"])
        self.document = document
        mean = _vector(document["mean"], n, "mean")
        scale = _vector(document["scale"], n, "scale")
        self.models: dict[str, LogisticModel] = {}
        for name, spec in document["attributes"].items():
            uses = tuple(str(g) for g in spec["uses"])
            unknown = set(uses) - set(FEATURE_GROUPS)
            if unknown:
                raise ValueError(f"{name}: unknown feature groups {sorted(unknown)}")
            self.models[name] = LogisticModel(
                mean=mean,
                scale=scale,
                weights=_vector(spec["weights"], n, name),
                bias=float(spec["bias"]),
                threshold=float(spec["threshold"]),
                uses=uses,
            )

    @classmethod
    def load(cls, path: Path | None = None) -> AttributeModels:
        """The shipped models, or those of ``path`` (a file written by bench/attribute_fit.py)."""
        if path is None:
            text = (
                resources.files("facegate.engine")
                .joinpath("calibration", DEFAULT_MODEL_FILE)
                .read_text(encoding="utf-8")
            )
        else:
            text = path.read_text(encoding="utf-8")
        return cls(json.loads(text))

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.models)

    def needs(self, name: str) -> tuple[str, ...]:
        """The inputs attribute ``name`` needs besides the chip: ``descriptor``, ``landmarks``."""
        return tuple(g for g in self.models[name].uses if g != "chip")

    def features(
        self,
        chip: RGBImage,
        descriptor: npt.ArrayLike | None = None,
        points68: npt.ArrayLike | None = None,
    ) -> FloatVector:
        """The feature vector of one face (compute once, then ``estimate`` each attribute).
        ``points68``: dlib's 68 landmarks of the face, in any pixel frame (image or chip)."""
        return feature_vector(chip, descriptor, points68)

    def estimate(self, name: str, features: FloatVector) -> AttributeEstimate:
        """One attribute of a face from :meth:`features`. Raises ``KeyError`` for an unknown
        attribute and ``ValueError`` when the model needs an input that was not given."""
        model = self.models[name]
        x = features.copy()
        for group, (lo, hi) in FEATURE_GROUPS.items():
            if np.isnan(x[lo:hi]).any():
                if group in model.uses:
                    raise ValueError(f"{name}: this model needs the face's {group}")
                x[lo:hi] = model.mean[lo:hi]  # contributes nothing: (x - mean) = 0
        return model.estimate(x)

    def estimate_all(
        self,
        chip: RGBImage,
        descriptor: npt.ArrayLike | None = None,
        points68: npt.ArrayLike | None = None,
    ) -> dict[str, AttributeEstimate]:
        """Every attribute whose inputs were given, for one face."""
        x = self.features(chip, descriptor, points68)
        given = {"chip", *(["descriptor"] if descriptor is not None else [])}
        given |= {"landmarks"} if points68 is not None else set()
        return {
            name: self.estimate(name, x)
            for name, model in self.models.items()
            if set(model.uses) <= given
        }


def estimate(
    models: AttributeModels,
    name: str,
    chip: RGBImage,
    descriptor: npt.ArrayLike | None = None,
    points68: npt.ArrayLike | None = None,
) -> tuple[bool, float]:
    """``(value, confidence_pct)`` of attribute ``name`` for one aligned chip (with the face's
    descriptor and 68 landmarks when the model needs them): the small function the attribute
    estimator of the API calls."""
    result = models.estimate(name, models.features(chip, descriptor, points68))
    return result.value, result.confidence_pct
