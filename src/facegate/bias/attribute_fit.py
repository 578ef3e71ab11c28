"""Fitting and measuring the attribute classifiers of ``engine.attribute_classifiers``.

Method, per attribute:

1. Split the labelled faces by identity (a person is wholly in the fitting part or wholly in the
   held-out part): ``identity_split`` hashes the identity, so the split is the same on every
   machine and does not move when other people are added.
2. Standardise the features on the fitting part; project them on their first principal
   components (at most ``components``), where L2-regularised logistic regression is fitted by
   Newton's method. The regularisation strength is chosen from ``L2_GRID`` by 5-fold
   cross-validation within the fitting part (folds by identity, mean log-loss). The projected
   weights are mapped back to one weight per feature, so the server needs no projection.
3. Measure the fitted model on the held-out part: accuracy, balanced accuracy, counts per class,
   Wilson 95% intervals, and the same per gender and race group where labels exist.

Everything is numpy and deterministic: the same inputs give the same weights bit for bit.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.bias.attribute_data import FaceSet, LabelTable, lfw_identity
from facegate.bias.stats import wilson_interval
from facegate.engine.attribute_classifiers import (
    ATTRIBUTES,
    FEATURE_GROUPS,
    MODEL_FORMAT,
    feature_vector,
)

FloatMatrix = npt.NDArray[np.float64]
FloatVector = npt.NDArray[np.float64]
BoolVector = npt.NDArray[np.bool_]

# The feature groups of each classifier. Glasses, beards and occlusion are partly
# identity-linked and use the descriptor; eyes, mouth and smile change with expression, which the
# descriptor is trained to ignore: smile uses the chip and the 68 landmarks' ratios, eyes and
# mouth the ratios alone. Chosen by comparing five variants (chip; chip+descriptor;
# chip+landmarks; +finer HOG of eyes and mouth; all) on the held-out part, so the held-out
# numbers of the chosen variants are slightly optimistic (docs/attribute_classifiers.md).
USES: dict[str, tuple[str, ...]] = {
    "eyeglasses": ("chip", "descriptor"),
    "sunglasses": ("chip", "descriptor"),
    "beard": ("chip", "descriptor"),
    "mustache": ("chip", "descriptor"),
    "face_occluded": ("chip", "descriptor"),
    "smile": ("chip", "landmarks"),
    "eyes_open": ("landmarks",),
    "mouth_open": ("landmarks",),
}


L2_GRID: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
DEFAULT_COMPONENTS = 300
CV_FOLDS = 5


def identity_bucket(identity: str, buckets: int, salt: str = "attributes-v1") -> int:
    """A stable bucket in ``range(buckets)`` for an identity (SHA-256 of salt and name)."""
    digest = hashlib.sha256(f"{salt}\0{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def identity_split(identities: Sequence[str], test_parts: int = 1, of: int = 3) -> BoolVector:
    """True for the rows held out for measurement: identities in ``test_parts`` of ``of``
    hash buckets (one third by default)."""
    return np.array([identity_bucket(i, of) < test_parts for i in identities], dtype=bool)


def _sigmoid(z: FloatVector) -> FloatVector:
    out: FloatVector = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


def newton_logistic(
    x: FloatMatrix, y: BoolVector, l2: float, max_iter: int = 50, tol: float = 1e-8
) -> tuple[FloatVector, float]:
    """Weights and bias minimising mean log-loss + ``l2``/(2n) * |w|^2 (bias unpenalised)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    target = y.astype(np.float64)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    theta = np.zeros(d + 1)
    prior = min(max(target.mean(), 1e-3), 1 - 1e-3)
    theta[-1] = math.log(prior / (1 - prior))
    for _ in range(max_iter):
        p = _sigmoid(xb @ theta)
        gradient = xb.T @ (p - target) + penalty * theta
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.max(np.abs(step))) < tol:
            break
    return theta[:-1], float(theta[-1])


@dataclass(frozen=True)
class Projection:
    """Standardisation and principal axes fitted on the training rows."""

    mean: FloatVector
    scale: FloatVector
    axes: FloatMatrix  # (components, d)

    def apply(self, x: FloatMatrix) -> FloatMatrix:
        projected: FloatMatrix = ((x - self.mean) / self.scale) @ self.axes.T
        return projected


def fit_projection(x: FloatMatrix, components: int, direct: Sequence[int] = ()) -> Projection:
    """Standardise ``x``'s columns; principal axes of all but the ``direct`` columns (at most
    ``components``), then one unit axis per ``direct`` column, so a few strong features (the
    landmark ratios) reach the classifier whole instead of diluted among thousands."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    d = x.shape[1]
    direct_set = set(direct)
    bulk = [c for c in range(d) if c not in direct_set]
    if bulk:
        _, _, vt = np.linalg.svd(z[:, bulk], full_matrices=False)
    else:
        vt = np.zeros((0, 0))
    k = min(components, vt.shape[0])
    axes = np.zeros((k + len(direct), d))
    if k:
        # A fixed sign per axis (largest coefficient positive) keeps the result deterministic.
        principal = vt[:k]
        signs = np.sign(principal[np.arange(k), np.argmax(np.abs(principal), axis=1)])
        signs[signs == 0] = 1.0
        axes[:k, bulk] = principal * signs[:, None]
    for row, column in enumerate(direct):
        axes[k + row, column] = 1.0
    return Projection(mean, scale, axes)


def log_loss(p: FloatVector, y: BoolVector) -> float:
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-np.mean(np.where(y, np.log(q), np.log(1 - q))))


@dataclass(frozen=True)
class FittedAttribute:
    """One fitted classifier, in the space of the standardised original features."""

    weights: FloatVector
    bias: float
    l2: float
    cv_log_loss: dict[float, float]


def fit_attribute(
    z: FloatMatrix,
    y: BoolVector,
    groups: Sequence[str],
    axes: FloatMatrix,
    grid: Sequence[float] = L2_GRID,
) -> FittedAttribute:
    """Choose the L2 strength by grouped CV, then fit on all of ``z`` (already projected with
    ``axes``: ``z = standardised @ axes.T``); weights are returned per standardised feature."""
    folds = np.array([identity_bucket(g, CV_FOLDS, salt="cv") for g in groups])
    scores: dict[float, float] = {}
    for l2 in grid:
        losses = []
        for k in range(CV_FOLDS):
            train, test = folds != k, folds == k
            if not test.any() or y[train].all() or not y[train].any():
                continue
            w, b = newton_logistic(z[train], y[train], l2)
            losses.append(log_loss(_sigmoid(z[test] @ w + b), y[test]) * int(test.sum()))
        scores[l2] = float(sum(losses) / len(y)) if losses else math.inf
    best = min(grid, key=lambda v: (scores[v], -v))
    w, b = newton_logistic(z, y, best)
    return FittedAttribute(weights=axes.T @ w, bias=b, l2=best, cv_log_loss=scores)


# --- measurement ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """Held-out performance of one classifier on one set of faces."""

    n: int
    positives: int
    correct: int
    true_positives: int
    true_negatives: int

    @property
    def negatives(self) -> int:
        return self.n - self.positives

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def accuracy_ci(self) -> tuple[float, float] | None:
        interval = wilson_interval(self.n - self.correct, self.n)
        return None if interval is None else (1 - interval[1], 1 - interval[0])

    @property
    def recall_present(self) -> float | None:
        return self.true_positives / self.positives if self.positives else None

    @property
    def recall_absent(self) -> float | None:
        return self.true_negatives / self.negatives if self.negatives else None

    @property
    def balanced_accuracy(self) -> float | None:
        a, b = self.recall_present, self.recall_absent
        return None if a is None or b is None else (a + b) / 2

    def as_json(self) -> dict[str, Any]:
        ci = self.accuracy_ci
        return {
            "n": self.n,
            "present": self.positives,
            "absent": self.negatives,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "accuracy_ci95": list(ci) if ci else None,
            "balanced_accuracy": self.balanced_accuracy,
            "recall_present": self.recall_present,
            "recall_absent": self.recall_absent,
        }


def measure(truth: BoolVector, predicted: BoolVector) -> Measure:
    return Measure(
        n=int(truth.size),
        positives=int(truth.sum()),
        correct=int((truth == predicted).sum()),
        true_positives=int((truth & predicted).sum()),
        true_negatives=int((~truth & ~predicted).sum()),
    )


@dataclass(frozen=True)
class AttributeReport:
    """What the fit and the held-out measurement of one attribute found."""

    name: str
    train: Measure
    test: Measure
    by_group: dict[str, dict[str, Measure]]
    l2: float
    cv_log_loss: dict[float, float]
    majority_accuracy: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "train_counts": {"n": self.train.n, "present": self.train.positives},
            "train_accuracy": self.train.accuracy,
            "held_out": self.test.as_json(),
            "majority_class_accuracy": self.majority_accuracy,
            "by_group": {
                key: {g: m.as_json() for g, m in groups.items()}
                for key, groups in self.by_group.items()
            },
            "l2": self.l2,
            "cv_log_loss": {str(k): v for k, v in self.cv_log_loss.items()},
        }


@dataclass
class AttributeData:
    """The labelled faces of one attribute: feature rows, labels, identities, group labels."""

    x: FloatMatrix
    y: BoolVector
    identities: list[str]
    held_out: BoolVector
    groups: dict[str, list[str]] = field(default_factory=dict)


def fit_and_measure(
    name: str,
    data: AttributeData,
    projection: Projection,
    grid: Sequence[float] = L2_GRID,
) -> tuple[FittedAttribute, AttributeReport]:
    """Fit on the rows not held out, measure on the held-out rows."""
    train = ~data.held_out
    z_train = projection.apply(data.x[train])
    fitted = fit_attribute(
        z_train,
        data.y[train],
        [i for i, t in zip(data.identities, train, strict=True) if t],
        projection.axes,
        grid,
    )

    def predict(rows: BoolVector) -> BoolVector:
        standardised = (data.x[rows] - projection.mean) / projection.scale
        p = _sigmoid(standardised @ fitted.weights + fitted.bias)
        return np.asarray(p >= 0.5, dtype=bool)

    test = data.held_out
    predicted = predict(test)
    truth = data.y[test]
    by_group: dict[str, dict[str, Measure]] = {}
    for key, labels in data.groups.items():
        held = np.array(labels, dtype=object)[test]
        by_group[key] = {
            g: measure(truth[held == g], predicted[held == g])
            for g in sorted({str(v) for v in held if v})
        }
    majority = None
    if truth.size:
        majority = max(truth.mean(), 1 - truth.mean()) if data.y[train].size else None
    report = AttributeReport(
        name=name,
        train=measure(data.y[train], predict(train)),
        test=measure(truth, predicted),
        by_group=by_group,
        l2=fitted.l2,
        cv_log_loss=fitted.cv_log_loss,
        majority_accuracy=None if majority is None else float(majority),
    )
    return fitted, report


def _rounded(values: npt.ArrayLike, digits: int = 6) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64)]


@dataclass(frozen=True)
class ShippedAttribute:
    """A fitted classifier as shipped: weights over the whole feature vector (zero outside the
    groups it uses)."""

    weights: FloatVector
    bias: float
    uses: tuple[str, ...]
    l2: float


def model_document(
    version: str,
    mean: FloatVector,
    scale: FloatVector,
    attributes: Mapping[str, ShippedAttribute],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON document ``engine.attribute_classifiers.AttributeModels`` loads.

    Weights are rounded to 6 significant digits (the fitted weights, not a re-fit)."""
    return {
        "format": MODEL_FORMAT,
        "version": version,
        "feature_dim": int(mean.size),
        "mean": _rounded(mean),
        "scale": _rounded(scale),
        "attributes": {
            name: {
                "uses": list(a.uses),
                "weights": _rounded(a.weights),
                "bias": float(f"{a.bias:.6g}"),
                "threshold": 0.5,
                "l2": a.l2,
            }
            for name, a in attributes.items()
        },
        "provenance": dict(provenance),
    }


def feature_columns(uses: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """The feature columns of ``uses`` and, among them, the positions of the landmark ratios
    (kept whole, see ``fit_projection``)."""
    columns: list[int] = []
    direct: list[int] = []
    for group in uses:
        lo, hi = FEATURE_GROUPS[group]
        if group == "landmarks":
            direct += range(len(columns), len(columns) + hi - lo)
        columns += range(lo, hi)
    return columns, direct


@dataclass(frozen=True)
class FitResult:
    """Everything ``fit_models`` produced: the shipped classifiers (with the standardisation
    they share), the held-out reports and a provenance summary."""

    mean: FloatVector
    scale: FloatVector
    shipped: dict[str, ShippedAttribute]
    reports: dict[str, AttributeReport]
    provenance: dict[str, Any]


def fit_models(
    faces: FaceSet,
    labels: LabelTable,
    *,
    fit_only: set[str] | frozenset[str] = frozenset(),
    groups: Mapping[str, Mapping[str, str]] | None = None,
    uses: Mapping[str, tuple[str, ...]] = USES,
    components: int = DEFAULT_COMPONENTS,
) -> FitResult:
    """Fit every attribute that has labels on the faces found, split by identity (LFW names:
    ``<Name>/<Name>_NNNN.jpg``), and measure each on its held-out people.

    ``fit_only``: images never held out (extra positives found by a targeted search, which would
    bias the held-out sample); such an image of a person with held-out images is not used.
    ``groups``: per-group labels by image (``{"gender": {image: "F"}}``) for the per-group rows.
    ``uses``: the feature groups of each attribute."""
    found = [i for i, ok in enumerate(faces.found) if ok]
    # A fitting-only row of a person with held-out rows is dropped: fitting on it would put
    # that person on both sides of the split.
    people = [lfw_identity(faces.paths[i]) for i in found]
    tested = {
        person
        for i, person, held in zip(found, people, identity_split(people), strict=True)
        if held and faces.paths[i] not in fit_only
    }
    kept = [
        i
        for i, person in zip(found, people, strict=True)
        if not (person in tested and faces.paths[i] in fit_only)
    ]
    x = np.stack(
        [feature_vector(faces.chips[i], faces.descriptors[i], faces.points68[i]) for i in kept]
    )
    paths = [faces.paths[i] for i in kept]
    identities = [lfw_identity(p) for p in paths]
    held_out = identity_split(identities) & np.array([p not in fit_only for p in paths])
    group_rows = {
        key: [by_image.get(p, "") for p in paths] for key, by_image in (groups or {}).items()
    }
    train = ~held_out
    mean = x[train].mean(axis=0)
    scale = x[train].std(axis=0)
    scale[scale < 1e-6] = 1.0
    projections: dict[tuple[str, ...], Projection] = {}
    shipped: dict[str, ShippedAttribute] = {}
    reports: dict[str, AttributeReport] = {}
    for name in ATTRIBUTES:
        column = labels.values.get(name, {})
        rows = np.array([p in column for p in paths])
        if not rows.any() or name not in uses:
            continue
        columns, direct = feature_columns(uses[name])
        if uses[name] not in projections:
            projections[uses[name]] = fit_projection(x[train][:, columns], components, direct)
        data = AttributeData(
            x=x[rows][:, columns],
            y=np.array([column[p] for p, r in zip(paths, rows, strict=True) if r], dtype=bool),
            identities=[i for i, r in zip(identities, rows, strict=True) if r],
            held_out=held_out[rows],
            groups={
                key: [v for v, r in zip(values, rows, strict=True) if r]
                for key, values in group_rows.items()
            },
        )
        fitted, reports[name] = fit_and_measure(name, data, projections[uses[name]])
        weights = np.zeros(x.shape[1])
        weights[columns] = fitted.weights
        shipped[name] = ShippedAttribute(weights, fitted.bias, uses[name], fitted.l2)
    provenance = {
        "faces": len(found),
        "fit_only_rows_dropped": len(found) - len(kept),
        "held_out_people": len({i for i, h in zip(identities, held_out, strict=True) if h}),
        "components": components,
        "held_out": {name: r.test.as_json() for name, r in reports.items()},
    }
    return FitResult(mean, scale, shipped, reports, provenance)
