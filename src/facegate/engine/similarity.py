"""From descriptor distance to Rekognition's 0-100 Similarity.

``similarity_pct = 100 / (1 + exp(k (d - d0)))`` with ``d`` the Euclidean distance between two
descriptors: strictly decreasing in ``d``, 100 only in the limit, never below 0.

Version ``dlib-logistic-v0`` (provisional, chosen, not yet fitted on data):

* ``d = 0.6`` -> 80: dlib's customary "same person" distance becomes Rekognition's default
  threshold, so a boto3 caller who keeps the default gets dlib's default decision;
* ``d = 0.4`` -> 99: Amazon's public-safety threshold needs a distance dlib's LFW mated pairs
  usually reach (samples/obama*.jpg pairs are 0.33-0.43 apart; obama vs biden 0.81-0.87).

So ``k = ln(99 / 4) / 0.2 = 16.04`` and ``d0 = 0.6 + ln(4) / k = 0.6864``. The bias issue replaces
this with a mapping fitted on data, published with the false match rate at each threshold; the
version string travels with every stored face so mixed mappings are never compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


class SimilarityModel(Protocol):
    """A versioned, strictly decreasing map from descriptor distance to a 0-100 Similarity.

    Implementations are frozen and picklable (they travel to engine worker processes).
    """

    @property
    def version(self) -> str:
        """Names the mapping; it travels with stored faces and every report."""
        ...

    def similarity_pct(self, distance: float) -> float:
        """Similarity for one distance."""
        ...

    def similarities_pct(self, distances: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Vectorised :meth:`similarity_pct`."""
        ...

    def distance_for(self, similarity_pct: float) -> float:
        """The largest distance whose similarity is at least ``similarity_pct`` (0 < pct < 100)."""
        ...


@dataclass(frozen=True)
class LogisticSimilarity:
    """A logistic map from descriptor distance to a 0-100 similarity, versioned."""

    version: str
    slope: float
    midpoint: float

    @classmethod
    def from_anchors(
        cls, version: str, d_low: float, pct_low: float, d_high: float, pct_high: float
    ) -> LogisticSimilarity:
        """The logistic through (d_low, pct_low) and (d_high, pct_high), d_low < d_high."""
        if not (d_low < d_high and 0 < pct_high < pct_low < 100):
            raise ValueError("anchors must satisfy d_low < d_high and 0 < pct_high < pct_low < 100")

        def logit(p: float) -> float:
            return math.log((100.0 - p) / p)  # equals k (d - d0)

        slope = (logit(pct_high) - logit(pct_low)) / (d_high - d_low)
        midpoint = d_high - logit(pct_high) / slope
        return cls(version=version, slope=slope, midpoint=midpoint)

    def similarity_pct(self, distance: float) -> float:
        """Similarity for one distance."""
        z = self.slope * (distance - self.midpoint)
        if z > 700:  # exp overflow: similarity is 0 to double precision
            return 0.0
        return 100.0 / (1.0 + math.exp(z))

    def similarities_pct(self, distances: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Vectorised :meth:`similarity_pct`."""
        z = np.clip(
            self.slope * (np.asarray(distances, dtype=np.float64) - self.midpoint), -700, 700
        )
        return 100.0 / (1.0 + np.exp(z))

    def distance_for(self, similarity_pct: float) -> float:
        """The largest distance whose similarity is at least ``similarity_pct`` (0 < pct < 100)."""
        if not 0.0 < similarity_pct < 100.0:
            raise ValueError("similarity_pct must be strictly between 0 and 100")
        return self.midpoint + math.log((100.0 - similarity_pct) / similarity_pct) / self.slope


LOGISTIC_V0 = LogisticSimilarity.from_anchors("dlib-logistic-v0", 0.4, 99.0, 0.6, 80.0)
"""The provisional mapping described in the module docstring."""


def default_similarity() -> SimilarityModel:
    """The mapping the engine uses unless configured otherwise."""
    return LOGISTIC_V0


def euclidean(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Euclidean distance between two descriptors (float64 accumulation)."""
    return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))
