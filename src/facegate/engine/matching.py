"""Scores in one direction: descriptor distance -> (optionally) normalised score -> Similarity.

A :class:`Matcher` pairs a :class:`PairScorer` (raw distance, or the label-free cohort
normalisation of :mod:`facegate.engine.cohort`) with the :class:`SimilarityModel` calibrated on
*that scorer's* scores. Callers never feed a raw distance to a model calibrated on normalised
scores: they ask the matcher for the Similarity of a pair, or of a probe against many faces.

``default_matcher()`` is what the server uses: cohort normalisation with its calibration
(``engine/calibration/dlib-resnet-v1.cohort.json``). ``raw_matcher()`` is the raw distance with
its own calibration (``dlib-resnet-v1.json``), selected with ``FACEGATE_SCORE_NORMALISATION=none``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facegate.engine.cohort import CohortNormaliser, FloatArray
from facegate.engine.similarity import (
    CalibratedSimilarity,
    SimilarityModel,
    calibration_document,
)

COHORT_VARIANT = "cohort"
"""The calibration variant (file suffix) of the cohort-normalised score."""


class PairScorer(Protocol):
    """Turns distances into scores (smaller = more alike) using per-face statistics."""

    @property
    def version(self) -> str:
        """``raw`` or ``cohort-<digest>``."""
        ...

    @property
    def max_shift(self) -> float:
        """The most two faces' statistics can move their scores apart at one distance, halved:
        a face at raw distance ``d + 2 * max_shift`` can outscore one at ``d``, not further."""
        ...

    def stats(self, vectors: npt.ArrayLike) -> FloatArray:
        """One statistic per row of ``vectors``."""
        ...

    def scores(
        self, distances: npt.ArrayLike, probe_stats: npt.ArrayLike, face_stats: npt.ArrayLike
    ) -> FloatArray:
        """Scores of pairs at ``distances`` (broadcasting)."""
        ...

    def distance_bound(self, score_limit: float, probe_stat: float) -> float:
        """The largest raw distance that can still score ``<= score_limit`` for this probe."""
        ...


@dataclass(frozen=True)
class RawScorer:
    """The identity: the score is the distance."""

    version: str = "raw"
    max_shift: float = 0.0

    def stats(self, vectors: npt.ArrayLike) -> FloatArray:
        return np.zeros(len(np.atleast_2d(np.asarray(vectors))), dtype=np.float64)

    def scores(
        self, distances: npt.ArrayLike, probe_stats: npt.ArrayLike, face_stats: npt.ArrayLike
    ) -> FloatArray:
        return np.asarray(distances, dtype=np.float64)

    def distance_bound(self, score_limit: float, probe_stat: float) -> float:
        return score_limit


@functools.cache
def _shipped_cohort(model_version: str) -> CohortNormaliser:
    return CohortNormaliser.from_json(calibration_document(model_version, COHORT_VARIANT)["cohort"])


@dataclass(frozen=True)
class ShippedCohort:
    """The cohort shipped for ``model_version``, read on first use (cheap to pickle)."""

    model_version: str = "dlib-resnet-v1"

    @property
    def normaliser(self) -> CohortNormaliser:
        """The fitted cohort (read from the package once per process)."""
        return _shipped_cohort(self.model_version)

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


@dataclass(frozen=True)
class Matcher:
    """A scorer and the Similarity calibrated on its scores (see the module docstring)."""

    similarity: SimilarityModel
    scorer: PairScorer = field(default_factory=RawScorer)

    @property
    def version(self) -> str:
        """The Similarity's version (it names the scorer it was fitted on)."""
        return self.similarity.version

    @property
    def normalised(self) -> bool:
        """Whether scores differ from raw distances."""
        return self.scorer.max_shift > 0.0

    def stats(self, vectors: npt.ArrayLike) -> FloatArray:
        """Per-face statistics (zeros when not normalised)."""
        return self.scorer.stats(vectors)

    def similarities(
        self, distances: npt.ArrayLike, probe_stat: float, face_stats: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """Similarity (0-100) of a probe against faces at ``distances`` with ``face_stats``."""
        return self.similarity.similarities_pct(
            self.scorer.scores(distances, probe_stat, face_stats)
        )

    def compare(self, a: npt.ArrayLike, b: npt.ArrayLike) -> float:
        """Similarity of one pair of descriptors."""
        va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        distance = float(np.linalg.norm(va - vb))
        sa, sb = self.stats(np.vstack([va, vb]))
        return float(self.similarities([distance], float(sa), [sb])[0])

    def distance_bound(self, threshold_pct: float, probe_stat: float) -> float:
        """The largest raw distance at which some face can still reach ``threshold_pct``."""
        if threshold_pct <= 0.0:
            return math.inf
        # Similarity 100 is a score of 0 (or less): normalisation may still allow a distance > 0
        limit = 0.0 if threshold_pct >= 100.0 else self.similarity.distance_for(threshold_pct)
        return max(0.0, self.scorer.distance_bound(limit, probe_stat))


def raw_matcher() -> Matcher:
    """Raw distance with its calibration (``dlib-resnet-v1.json``)."""
    return Matcher(CalibratedSimilarity())


def default_matcher() -> Matcher:
    """Cohort normalisation with the calibration fitted on its scores."""
    return Matcher(CalibratedSimilarity(variant=COHORT_VARIANT), ShippedCohort())


NORMALISATIONS = {"cohort": default_matcher, "none": raw_matcher}
"""``FACEGATE_SCORE_NORMALISATION`` values."""


def matcher_named(name: str) -> Matcher:
    """The matcher of a ``FACEGATE_SCORE_NORMALISATION`` value; ``ValueError`` for others."""
    try:
        return NORMALISATIONS[name.strip().lower()]()
    except KeyError:
        raise ValueError(
            f"FACEGATE_SCORE_NORMALISATION must be one of {', '.join(NORMALISATIONS)}, got {name!r}"
        ) from None
