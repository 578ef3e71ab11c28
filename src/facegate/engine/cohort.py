"""Label-free score normalisation against a reference cohort of other people's faces.

Why: with dlib's descriptor, strangers lie closer together in some regions of descriptor space
than in others (docs/bias.md: at one distance, impostor pairs of East Asian women "match" 30-50
times as often as those of White men). A single distance threshold therefore gives each region,
and so each demographic group, its own false match rate. Normalisation corrects each comparison
by how crowded the neighbourhood of its two faces is, measured against a reference cohort, and
never looks at a demographic label: it sees only descriptors.

The statistic of a face ``x`` is its expected distance to the people of its neighbourhood::

    m(x) = mean over the ``nearest`` closest centroids c of  sqrt(|x - c|^2 + s_c^2)

where ``c`` is the centroid of one cohort cluster and ``s_c^2`` the mean squared distance of
that cluster's members to it (for a member ``y`` whose offset from ``c`` is uncorrelated with
``x - c``, ``E|x - y|^2 = |x - c|^2 + s_c^2``), clipped to ``[low, high]``. The score of a pair is
a distance corrected by both faces' statistics::

    score(a, b) = d(a, b) - (m(a) + m(b)) / 2 + offset

``offset`` is the cohort's median statistic, so scores stay on the scale of distances. A face in
a crowded region (small ``m``) must come closer to match; one in a sparse region may be a little
further. The clip bounds how much a face can gain: a face far from every centroid (an unusual
image, a poor detection) gains at most ``high - offset``, so an outlier never becomes an easy
match.

Only aggregates are shipped: each centroid is the mean of at least :data:`MIN_CENTROID_FACES`
faces, with its spread and size. No individual's descriptor leaves the fitting machine. The
cohort is fitted by ``facegate bias normalise`` (:mod:`facegate.bias.normalisation`) and shipped
with the calibration of the normalised score (``engine/calibration/<model>.cohort.json``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MIN_CENTROID_FACES = 20
"""The fewest faces a shipped centroid may average (so none describes one person)."""

FloatArray = npt.NDArray[np.float64]


SMALL_PRODUCT = 8_000_000
"""Multiply-adds below which :func:`squared_distances` multiplies in its own thread (einsum)
instead of BLAS's: measured on the 2-core machine with the other core busy, OpenBLAS's two
threads took 20 ms for the 101 x 1,024 by 29 x 1,024 product of a search's tail statistics
(faceres' cohort), einsum 1.3 ms and one BLAS thread 0.7 ms; at 1,000 rows BLAS is the faster
again (docs/benchmarks.md, "The fused search's cost")."""


def squared_distances(x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """``|x_i - y_j|^2`` for every row pair (float64, by the dot-product expansion, clipped at 0
    against rounding). A small product (:data:`SMALL_PRODUCT`) runs in the caller's thread."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape[0] * b.shape[0] * a.shape[-1] <= SMALL_PRODUCT:
        products = np.einsum("ik,jk->ij", a, b)
    else:
        products = a @ b.T
    squares = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :]
    d2 = squares - 2.0 * products
    out: FloatArray = np.maximum(d2, 0.0)
    return out


def normalised_scores(
    distances: npt.ArrayLike, probe_stats: npt.ArrayLike, face_stats: npt.ArrayLike, offset: float
) -> FloatArray:
    """``distance - (probe + face) / 2 + offset``, broadcasting (the module's score)."""
    d = np.asarray(distances, dtype=np.float64)
    out: FloatArray = d - (np.asarray(probe_stats) + np.asarray(face_stats)) / 2.0 + offset
    return out


def largest_distance(score_limit: float, probe_stat: float, offset: float, high: float) -> float:
    """The largest raw distance that can score ``<= score_limit`` against a probe whose
    statistic is ``probe_stat``, when no face's statistic exceeds ``high``."""
    return score_limit - offset + (probe_stat + high) / 2.0


@dataclass(frozen=True, eq=False)
class CohortNormaliser:
    """A fitted cohort: centroids with their spreads, and the scoring constants.

    Contract: ``stats`` is deterministic, elementwise in ``[low, high]``; ``scores`` is
    ``distance - (probe + face) / 2 + offset``, so for fixed statistics it is strictly increasing
    in the distance; ``distance_bound(limit, probe)`` is the largest distance any face (whatever
    its statistic) can have and still score at most ``limit`` against that probe.
    """

    centroids: FloatArray
    spread_sq: FloatArray
    sizes: tuple[int, ...]
    nearest: int
    offset: float
    low: float
    high: float
    metric: str = "euclidean"
    """``euclidean`` (dlib's): ``m(x)`` is the expected distance above. ``cosine``: the
    cohort was fitted on unit vectors and ``m(x)`` is the expected cosine distance to a member,
    ``mean (|x - c|^2 + s_c^2) / 2`` for ``x`` scaled to unit length (for unit vectors
    ``1 - x.y = |x - y|^2 / 2``)."""

    def __post_init__(self) -> None:
        k = len(self.centroids)
        if self.metric not in ("euclidean", "cosine"):
            raise ValueError(f"a cohort's metric is euclidean or cosine, not {self.metric!r}")
        if self.centroids.ndim != 2 or k == 0:
            raise ValueError("a cohort needs a (clusters x dimensions) matrix of centroids")
        if self.spread_sq.shape != (k,) or len(self.sizes) != k:
            raise ValueError("a cohort needs one spread and one size per centroid")
        if min(self.sizes) < MIN_CENTROID_FACES:
            raise ValueError(
                f"every centroid must average at least {MIN_CENTROID_FACES} faces "
                f"(smallest: {min(self.sizes)})"
            )
        if not 1 <= self.nearest <= k:
            raise ValueError(f"nearest must be between 1 and {k}")
        if not self.low <= self.offset <= self.high:
            raise ValueError("need low <= offset <= high")
        if not np.all(np.isfinite(self.centroids)) or np.any(self.spread_sq < 0):
            raise ValueError("centroids must be finite and spreads non-negative")

    @property
    def dimensions(self) -> int:
        """The descriptor length the cohort was fitted on."""
        return int(self.centroids.shape[1])

    @property
    def version(self) -> str:
        """``cohort-<digest>``: changes whenever any shipped number changes."""
        blob = json.dumps(self.to_json(), sort_keys=True).encode()
        return f"cohort-{hashlib.sha256(blob).hexdigest()[:8]}"

    @property
    def max_shift(self) -> float:
        """Half the clip range: at one distance, two faces' scores differ by at most this much
        from the statistics' side (see :class:`facegate.engine.matching.PairScorer`)."""
        return (self.high - self.low) / 2.0

    def stats(self, vectors: npt.ArrayLike) -> FloatArray:
        """``m(x)`` of each row of ``vectors`` (one row or a matrix), clipped to [low, high]."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if x.shape[1] != self.dimensions:
            raise ValueError(
                f"descriptors of {x.shape[1]} values; the cohort has {self.dimensions}"
            )
        if self.metric == "cosine":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            unit = x / np.where(norms > 0, norms, 1.0)
            expected = (squared_distances(unit, self.centroids) + self.spread_sq[None, :]) / 2.0
        else:
            expected = np.sqrt(squared_distances(x, self.centroids) + self.spread_sq[None, :])
        j = self.nearest
        closest = (
            np.partition(expected, j - 1, axis=1)[:, :j] if j < len(self.centroids) else expected
        )
        out: FloatArray = np.clip(closest.mean(axis=1), self.low, self.high)
        return out

    def scores(
        self, distances: npt.ArrayLike, probe_stats: npt.ArrayLike, face_stats: npt.ArrayLike
    ) -> FloatArray:
        """Normalised scores (broadcasting): smaller is more alike, like a distance."""
        return normalised_scores(distances, probe_stats, face_stats, self.offset)

    def distance_bound(self, score_limit: float, probe_stat: float) -> float:
        """The largest raw distance that can score ``<= score_limit`` against this probe."""
        return largest_distance(score_limit, probe_stat, self.offset, self.high)

    def to_json(self) -> dict[str, Any]:
        """The shipped form (centroids rounded to float32 precision; ``metric`` only when it
        is not Euclidean, so dlib's cohort and its version are as before)."""
        extra: dict[str, Any] = {} if self.metric == "euclidean" else {"metric": self.metric}
        return {
            **extra,
            "nearest": self.nearest,
            "offset": self.offset,
            "low": self.low,
            "high": self.high,
            "sizes": list(self.sizes),
            "spread_sq": [float(np.float32(v)) for v in self.spread_sq],
            "centroids": [[float(np.float32(v)) for v in row] for row in self.centroids],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CohortNormaliser:
        """Inverse of :meth:`to_json`; raises ``ValueError`` (or ``KeyError``) on a bad doc."""
        return cls(
            centroids=np.asarray(doc["centroids"], dtype=np.float64),
            spread_sq=np.asarray(doc["spread_sq"], dtype=np.float64),
            sizes=tuple(int(n) for n in doc["sizes"]),
            nearest=int(doc["nearest"]),
            offset=float(doc["offset"]),
            low=float(doc["low"]),
            high=float(doc["high"]),
            metric=str(doc.get("metric", "euclidean")),
        )
