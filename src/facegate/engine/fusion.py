"""Score fusion of two descriptor models: dlib's ResNet (128-d) and HSE FaceRes (``faceres``,
1,024-d), as a model of its own (issue 19), with its label-free cohort.

**The fused score.** For a pair of faces with dlib's Euclidean distance ``d`` and faceres's
Euclidean distance ``e`` between L2-normalised descriptors (so faceres's cosine distance is
``c = 1 - cos = e^2 / 2``), each is z-scored by the mean and standard deviation of impostor
pairs (LFW, the calibration's fit half only)::

    z(d, e) = (d - dlib_mean) / dlib_sd + (c - faceres_mean) / faceres_sd

A z-score can be negative; the engine's calibration maps non-negative "distances". So the fused
model ships the same order as a weighted mean of the two distances, zero for identical faces::

    fused_distance(d, e) = w_dlib d + w_faceres c
    w_k = (1 / sd_k) / (1 / dlib_sd + 1 / faceres_sd)

``z = (1 / dlib_sd + 1 / faceres_sd) fused_distance - (dlib_mean / dlib_sd + faceres_mean /
faceres_sd)``: an increasing affine map, so both rank every pair alike and every accuracy is
the same. The Similarity calibration (``engine/calibration/<fused model>.json``) maps
``fused_distance`` (or its cohort-normalised score, ``...cohort.json``) like any other model's
distance.

**The fused cohort.** As for one model (:mod:`facegate.engine.cohort`), the statistic of a face
is its expected fused distance to the members of its nearest cohort clusters; the clusters are
shared by both models (fitted on the faces' joint descriptors), each stores both models'
centroids and spreads::

    m(x) = mean over the ``nearest`` closest clusters k of
           w_dlib sqrt(|x_dlib - c_k|^2 + s_k^2) + w_faceres (|x_faceres - f_k|^2 + t_k^2) / 2

(for a unit vector ``y`` in the cluster, ``E|x - y|^2 / 2 = (|x - f|^2 + t^2) / 2`` is the
expected cosine distance), clipped to ``[low, high]``; ``score = fused_distance - (m(a) + m(b))
/ 2 + offset``, exactly the single-model form, on the fused scale. So
:class:`FusedCohort` satisfies :class:`facegate.engine.matching.PairScorer` for *joint*
descriptors (``[dlib 128 | faceres 1,024]`` in one row, :func:`joint`).

Pure functions and frozen data only: how faces keep two descriptors, and how an index prunes
by ``dlib_bound``, is the model-slot's business (issue 19 item 1).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facegate.engine.cohort import MIN_CENTROID_FACES, FloatArray, squared_distances
from facegate.engine.matching import COHORT_VARIANT, Matcher
from facegate.engine.similarity import CalibratedSimilarity, calibration_document

DLIB_VERSION = "dlib-resnet-v1"
FACERES_VERSION = "faceres-v1"
FUSED_VERSION = "fused-dlib-faceres-v1"
"""The fused model's version: names its calibration files (``<version>.json``, ``.cohort.json``)."""
DLIB_DIM = 128
FACERES_DIM = 1024


class PairMetric(Protocol):
    """How a model measures two faces from their descriptor rows (smaller: more alike)."""

    def pairwise(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """``(len(a), len(b))`` distances between every row of ``a`` and every row of ``b``."""
        ...

    def paired(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """Distances of row ``i`` of ``a`` to row ``i`` of ``b``."""
        ...


@dataclass(frozen=True)
class Euclidean:
    """dlib's metric (and faceres's, on unit vectors: a monotone map of its cosine distance)."""

    def pairwise(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        out: FloatArray = np.sqrt(squared_distances(a, b))
        return out

    def paired(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        out: FloatArray = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return out


def joint(dlib: npt.ArrayLike, faceres: npt.ArrayLike) -> FloatArray:
    """One row per face: dlib's 128 values, then faceres's 1,024 (made unit length)."""
    a = np.atleast_2d(np.asarray(dlib, dtype=np.float64))
    b = np.atleast_2d(np.asarray(faceres, dtype=np.float64))
    if a.shape[1] != DLIB_DIM or b.shape[1] != FACERES_DIM or len(a) != len(b):
        raise ValueError(f"need (n, {DLIB_DIM}) and (n, {FACERES_DIM}); got {a.shape}, {b.shape}")
    norms = np.linalg.norm(b, axis=1, keepdims=True)
    return np.hstack([a, b / np.where(norms > 0, norms, 1.0)])


def split(vectors: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(dlib part, faceres part) of joint rows (:func:`joint`)."""
    x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if x.shape[1] != DLIB_DIM + FACERES_DIM:
        width = DLIB_DIM + FACERES_DIM
        raise ValueError(f"joint descriptors have {width} values, not {x.shape[1]}")
    return x[:, :DLIB_DIM], x[:, DLIB_DIM:]


@dataclass(frozen=True)
class Fusion:
    """The fitted constants of the fused score (see the module docstring)."""

    dlib_mean: float
    dlib_sd: float
    faceres_mean: float
    faceres_sd: float

    def __post_init__(self) -> None:
        values = (self.dlib_mean, self.dlib_sd, self.faceres_mean, self.faceres_sd)
        if not all(np.isfinite(v) for v in values) or self.dlib_sd <= 0 or self.faceres_sd <= 0:
            raise ValueError("fusion constants must be finite, deviations positive")

    @property
    def weights(self) -> tuple[float, float]:
        """``(w_dlib, w_faceres)``: the weights of the two distances, summing to 1."""
        a, b = 1.0 / self.dlib_sd, 1.0 / self.faceres_sd
        return a / (a + b), b / (a + b)

    @property
    def version(self) -> str:
        """``fusion-<digest>`` of the constants."""
        blob = json.dumps(self.to_json(), sort_keys=True).encode()
        return f"fusion-{hashlib.sha256(blob).hexdigest()[:8]}"

    def distance(self, dlib_distance: npt.ArrayLike, faceres_distance: npt.ArrayLike) -> FloatArray:
        """``fused_distance(d, e)`` (broadcasting): ``e`` is faceres's Euclidean distance between
        unit vectors."""
        w1, w2 = self.weights
        d = np.asarray(dlib_distance, dtype=np.float64)
        e = np.asarray(faceres_distance, dtype=np.float64)
        out: FloatArray = w1 * d + w2 * (e * e / 2.0)
        return out

    def z(self, dlib_distance: npt.ArrayLike, faceres_distance: npt.ArrayLike) -> FloatArray:
        """The z-scored sum (the issue's form; same order as :meth:`distance`)."""
        d = np.asarray(dlib_distance, dtype=np.float64)
        c = np.asarray(faceres_distance, dtype=np.float64) ** 2 / 2.0
        out: FloatArray = (d - self.dlib_mean) / self.dlib_sd + (
            c - self.faceres_mean
        ) / self.faceres_sd
        return out

    def z_of_distance(self, fused: npt.ArrayLike) -> FloatArray:
        """The z-scored sum of a pair at ``fused`` distance."""
        a, b = 1.0 / self.dlib_sd, 1.0 / self.faceres_sd
        offset = self.dlib_mean * a + self.faceres_mean * b
        out: FloatArray = (a + b) * np.asarray(fused, dtype=np.float64) - offset
        return out

    def dlib_bound(self, fused: float) -> float:
        """The largest dlib distance a pair at fused distance ``<= fused`` can have (its faceres
        term is never negative): an index over dlib's vectors may prune beyond it."""
        return max(0.0, fused) / self.weights[0]

    def pairwise(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """Fused distances between every joint row of ``a`` and of ``b``."""
        a1, a2 = split(a)
        b1, b2 = split(b)
        return self.distance(np.sqrt(squared_distances(a1, b1)), np.sqrt(squared_distances(a2, b2)))

    def paired(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """Fused distances of joint row ``i`` of ``a`` to row ``i`` of ``b``."""
        a1, a2 = split(a)
        b1, b2 = split(b)
        e = Euclidean()
        return self.distance(e.paired(a1, b1), e.paired(a2, b2))

    def to_json(self) -> dict[str, Any]:
        return {
            "dlib_mean": self.dlib_mean,
            "dlib_sd": self.dlib_sd,
            "faceres_mean": self.faceres_mean,
            "faceres_sd": self.faceres_sd,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Fusion:
        return cls(
            float(doc["dlib_mean"]),
            float(doc["dlib_sd"]),
            float(doc["faceres_mean"]),
            float(doc["faceres_sd"]),
        )


@dataclass(frozen=True, eq=False)
class FusedCohort:
    """A cohort of shared clusters with both models' centroids and spreads, and the fused
    scoring constants. Same contract as :class:`facegate.engine.cohort.CohortNormaliser`, on
    joint descriptors and fused distances."""

    fusion: Fusion
    dlib_centroids: FloatArray
    dlib_spread_sq: FloatArray
    faceres_centroids: FloatArray
    faceres_spread_sq: FloatArray
    sizes: tuple[int, ...]
    nearest: int
    offset: float
    low: float
    high: float

    def __post_init__(self) -> None:
        k = len(self.sizes)
        if self.dlib_centroids.shape != (k, DLIB_DIM) or self.faceres_centroids.shape != (
            k,
            FACERES_DIM,
        ):
            raise ValueError("a fused cohort needs both models' centroids for every cluster")
        if self.dlib_spread_sq.shape != (k,) or self.faceres_spread_sq.shape != (k,):
            raise ValueError("a fused cohort needs both spreads for every cluster")
        if k == 0 or min(self.sizes) < MIN_CENTROID_FACES:
            raise ValueError(f"every centroid must average at least {MIN_CENTROID_FACES} faces")
        if not 1 <= self.nearest <= k:
            raise ValueError(f"nearest must be between 1 and {k}")
        if not self.low <= self.offset <= self.high:
            raise ValueError("need low <= offset <= high")

    @property
    def version(self) -> str:
        """``cohort-<digest>`` of everything shipped (the fusion constants included)."""
        blob = json.dumps(self.to_json(), sort_keys=True).encode()
        return f"cohort-{hashlib.sha256(blob).hexdigest()[:8]}"

    @property
    def max_shift(self) -> float:
        return (self.high - self.low) / 2.0

    def expected(self, vectors: npt.ArrayLike) -> FloatArray:
        """``(n, clusters)``: each face's expected fused distance to each cluster's members."""
        x1, x2 = split(vectors)
        w1, w2 = self.fusion.weights
        dlib = np.sqrt(squared_distances(x1, self.dlib_centroids) + self.dlib_spread_sq[None, :])
        faceres = (squared_distances(x2, self.faceres_centroids) + self.faceres_spread_sq) / 2.0
        out: FloatArray = w1 * dlib + w2 * faceres
        return out

    def stats(self, vectors: npt.ArrayLike) -> FloatArray:
        """``m(x)`` of each joint row, clipped to ``[low, high]``."""
        expected = self.expected(vectors)
        j = self.nearest
        closest = np.partition(expected, j - 1, axis=1)[:, :j] if j < len(self.sizes) else expected
        out: FloatArray = np.clip(closest.mean(axis=1), self.low, self.high)
        return out

    def scores(
        self, distances: npt.ArrayLike, probe_stats: npt.ArrayLike, face_stats: npt.ArrayLike
    ) -> FloatArray:
        """Normalised scores of pairs at fused ``distances`` (broadcasting)."""
        d = np.asarray(distances, dtype=np.float64)
        out: FloatArray = d - (np.asarray(probe_stats) + np.asarray(face_stats)) / 2.0 + self.offset
        return out

    def distance_bound(self, score_limit: float, probe_stat: float) -> float:
        """The largest fused distance that can score ``<= score_limit`` against this probe."""
        return score_limit - self.offset + (probe_stat + self.high) / 2.0

    def to_json(self) -> dict[str, Any]:
        """The shipped form (centroids rounded to float32 precision)."""

        def rows(m: FloatArray) -> list[list[float]]:
            return [[float(np.float32(v)) for v in row] for row in m]

        return {
            "kind": "fused",
            "fusion": self.fusion.to_json(),
            "nearest": self.nearest,
            "offset": self.offset,
            "low": self.low,
            "high": self.high,
            "sizes": list(self.sizes),
            "parts": {
                DLIB_VERSION: {
                    "spread_sq": [float(np.float32(v)) for v in self.dlib_spread_sq],
                    "centroids": rows(self.dlib_centroids),
                },
                FACERES_VERSION: {
                    "spread_sq": [float(np.float32(v)) for v in self.faceres_spread_sq],
                    "centroids": rows(self.faceres_centroids),
                },
            },
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FusedCohort:
        """Inverse of :meth:`to_json`; ``ValueError`` (or ``KeyError``) on a bad document."""
        if doc.get("kind") != "fused":
            raise ValueError("not a fused cohort")
        parts = doc["parts"]
        return cls(
            fusion=Fusion.from_json(doc["fusion"]),
            dlib_centroids=np.asarray(parts[DLIB_VERSION]["centroids"], dtype=np.float64),
            dlib_spread_sq=np.asarray(parts[DLIB_VERSION]["spread_sq"], dtype=np.float64),
            faceres_centroids=np.asarray(parts[FACERES_VERSION]["centroids"], dtype=np.float64),
            faceres_spread_sq=np.asarray(parts[FACERES_VERSION]["spread_sq"], dtype=np.float64),
            sizes=tuple(int(n) for n in doc["sizes"]),
            nearest=int(doc["nearest"]),
            offset=float(doc["offset"]),
            low=float(doc["low"]),
            high=float(doc["high"]),
        )


# --- the shipped files ---------------------------------------------------------------------------


@functools.cache
def _shipped_fusion(model_version: str) -> Fusion:
    return Fusion.from_json(calibration_document(model_version)["fusion"])


@functools.cache
def _shipped_fused_cohort(model_version: str) -> FusedCohort:
    return FusedCohort.from_json(calibration_document(model_version, COHORT_VARIANT)["cohort"])


def shipped_fusion(model_version: str = FUSED_VERSION) -> Fusion:
    """The fusion constants shipped in ``engine/calibration/<model_version>.json``."""
    return _shipped_fusion(model_version)


@dataclass(frozen=True)
class ShippedFusedCohort:
    """The fused cohort shipped for ``model_version``, read on first use (cheap to pickle); a
    :class:`facegate.engine.matching.PairScorer` over joint descriptors and fused distances."""

    model_version: str = FUSED_VERSION

    @property
    def normaliser(self) -> FusedCohort:
        return _shipped_fused_cohort(self.model_version)

    @property
    def version(self) -> str:
        return self.normaliser.version

    @property
    def max_shift(self) -> float:
        return self.normaliser.max_shift

    def stats(self, vectors: npt.ArrayLike) -> FloatArray:
        return self.normaliser.stats(vectors)

    def scores(
        self, distances: npt.ArrayLike, probe_stats: npt.ArrayLike, face_stats: npt.ArrayLike
    ) -> FloatArray:
        return self.normaliser.scores(distances, probe_stats, face_stats)

    def distance_bound(self, score_limit: float, probe_stat: float) -> float:
        return self.normaliser.distance_bound(score_limit, probe_stat)


def fused_matcher(normalised: bool = True, model_version: str = FUSED_VERSION) -> Matcher:
    """The fused model's scorer and Similarity: the fused cohort with the calibration fitted on
    its scores (``<model>.cohort.json``), or the raw fused distance with its own (``<model>.json``).
    Feed it fused distances (:meth:`Fusion.distance`), never a Euclidean distance of joint rows
    (so not :meth:`Matcher.compare`: use :func:`compare`)."""
    if normalised:
        return Matcher(
            CalibratedSimilarity(model_version, COHORT_VARIANT), ShippedFusedCohort(model_version)
        )
    return Matcher(CalibratedSimilarity(model_version))


def compare(matcher: Matcher, fusion: Fusion, a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """The Similarity of two faces' joint descriptors (:func:`joint`) under ``matcher``."""
    rows = np.vstack([np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(b)])
    distance = float(fusion.paired(rows[:1], rows[1:])[0])
    sa, sb = matcher.stats(rows)
    return float(matcher.similarities([distance], float(sa), [sb])[0])
