"""Scores in one direction: descriptor distance -> (optionally) normalised score -> Similarity.

A :class:`Matcher` pairs a :class:`PairScorer` (raw distance, or the label-free cohort
normalisation of :mod:`facegate.engine.cohort`) with the :class:`SimilarityModel` calibrated on
*that scorer's* scores. Callers never feed a raw distance to a model calibrated on normalised
scores: they ask the matcher for the Similarity of a pair, or of a probe against many faces.

``default_matcher()`` is what the server uses: cohort normalisation with its calibration
(``engine/calibration/dlib-resnet-v1.cohort.json``). ``raw_matcher()`` is the raw distance with
its own calibration (``dlib-resnet-v1.json``), selected with ``FACEGATE_SCORE_NORMALISATION=none``.

Several descriptor models: a matcher belongs to one model. Its
:attr:`Matcher.space` says how two of the model's vectors are compared (``facegate.vectorspace``:
Euclidean for dlib, cosine for faceres, a weighted sum of the parts for a fused model, its
``weights`` from the calibration document's ``"fusion"``), :meth:`Matcher.distance` and
:meth:`Matcher.distances` compute that distance, and its Similarity is the model's own
calibration. :func:`matcher_for` makes the matcher of a :class:`DescriptorModel` and refuses a
model without a calibration (:class:`UncalibratedModel`); :class:`MatcherSet` keeps one per
model for the server. dlib's matcher computes exactly what it computed before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facegate.engine.cohort import (
    CohortNormaliser,
    FloatArray,
    largest_distance,
    normalised_scores,
)
from facegate.engine.descriptors import FUSED, DescriptorModel, DescriptorRegistry
from facegate.engine.similarity import (
    CalibratedSimilarity,
    SimilarityModel,
    calibration_document,
)
from facegate.vectorspace import DLIB_SPACE, VectorSpace

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
def _shipped_cohort(model_version: str, directory: str = "") -> CohortNormaliser | PartsCohort:
    doc = calibration_document(model_version, COHORT_VARIANT, directory)
    cohort = doc["cohort"]
    if "parts" in cohort:
        weights = tuple(float(w) for w in doc["fusion"]["weights"])
        return PartsCohort.from_json(cohort, weights)
    return CohortNormaliser.from_json(cohort)


@dataclass(frozen=True, eq=False)
class PartsCohort:
    """A fused model's cohort: one :class:`CohortNormaliser` per part, on that part's slice of
    the vector, combined with the fusion weights ``w``: ``m(x) = sum w_i m_i(x_i)``, so the
    score ``d - (m(a) + m(b)) / 2 + sum w_i offset_i`` is the weighted sum of the parts'
    normalised scores (the calibration document's ``"cohort": {"parts": [...]}``)."""

    parts: tuple[CohortNormaliser, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.parts) != len(self.weights) or not self.parts:
            raise ValueError("a fused cohort needs one weight per part")

    @classmethod
    def from_json(cls, doc: dict[str, Any], weights: tuple[float, ...]) -> PartsCohort:
        return cls(tuple(CohortNormaliser.from_json(p) for p in doc["parts"]), weights)

    def _slices(self) -> list[slice]:
        out, start = [], 0
        for part in self.parts:
            out.append(slice(start, start + part.dimensions))
            start += part.dimensions
        return out

    @property
    def offset(self) -> float:
        return sum(w * p.offset for p, w in zip(self.parts, self.weights, strict=True))

    @property
    def high(self) -> float:
        return sum(w * p.high for p, w in zip(self.parts, self.weights, strict=True))

    @property
    def version(self) -> str:
        blob = json.dumps(
            {"parts": [p.to_json() for p in self.parts], "weights": list(self.weights)},
            sort_keys=True,
        ).encode()
        return f"cohort-{hashlib.sha256(blob).hexdigest()[:8]}"

    @property
    def max_shift(self) -> float:
        return sum(w * p.max_shift for p, w in zip(self.parts, self.weights, strict=True))

    def stats(self, vectors: npt.ArrayLike) -> FloatArray:
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        total = np.zeros(len(x), dtype=np.float64)
        for part, cut, w in zip(self.parts, self._slices(), self.weights, strict=True):
            # each part's columns contiguous: the same numbers, without strided reads
            total += w * part.stats(np.ascontiguousarray(x[:, cut]))
        return total

    def scores(
        self, distances: npt.ArrayLike, probe_stats: npt.ArrayLike, face_stats: npt.ArrayLike
    ) -> FloatArray:
        return normalised_scores(distances, probe_stats, face_stats, self.offset)

    def distance_bound(self, score_limit: float, probe_stat: float) -> float:
        return largest_distance(score_limit, probe_stat, self.offset, self.high)


@dataclass(frozen=True)
class ShippedCohort:
    """The cohort shipped for ``model_version``, read on first use (cheap to pickle).
    ``directory``: where an operator's model keeps it (``""``: the package)."""

    model_version: str = "dlib-resnet-v1"
    directory: str = ""

    @property
    def normaliser(self) -> CohortNormaliser | PartsCohort:
        """The fitted cohort (read once per process)."""
        return _shipped_cohort(self.model_version, self.directory)

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
    space: VectorSpace = DLIB_SPACE
    """How two of the model's vectors are compared (``facegate.vectorspace``)."""
    weights: tuple[float, ...] | None = None
    """The weight of each part of :attr:`space` (None: all 1), from a fused model's
    calibration."""
    model_version: str = "dlib-resnet-v1"
    """The descriptor model whose vectors this matcher compares."""

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

    def distance(self, a: npt.ArrayLike, b: npt.ArrayLike) -> float:
        """The model's distance of one pair of descriptors (dlib's: ``|a - b|``)."""
        va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if self.space.euclidean and self.weights is None:
            return float(np.linalg.norm(va - vb))
        return self.space.distance(va, vb, self.weights)

    def distances(self, probe: npt.ArrayLike, faces: npt.ArrayLike) -> FloatArray:
        """The model's distances of ``probe`` to each row of ``faces`` (float64)."""
        return self.space.distances(probe, faces, self.weights)

    def compare(self, a: npt.ArrayLike, b: npt.ArrayLike) -> float:
        """Similarity of one pair of descriptors."""
        va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        distance = self.distance(va, vb)
        sa, sb = self.stats(np.vstack([va, vb]))
        return float(self.similarities([distance], float(sa), [sb])[0])

    def distance_bound(self, threshold_pct: float, probe_stat: float) -> float:
        """The largest raw distance at which some face can still reach ``threshold_pct``."""
        if threshold_pct <= 0.0:
            return math.inf
        # Similarity 100 is a score of 0 (or less): normalisation may still allow a distance > 0
        limit = 0.0 if threshold_pct >= 100.0 else self.similarity.distance_for(threshold_pct)
        return max(0.0, self.scorer.distance_bound(limit, probe_stat))


def read_promise(matcher: Matcher) -> str | None:
    """Read ``matcher``'s promise curve now (the server calls it at start, so a malformed or
    stale one stops it there, not at the first search): its version, or None when the nominal
    scale is the promise. Raises ``ValueError`` as :func:`~facegate.engine.similarity.
    promise_curve` does."""
    similarity = matcher.similarity
    if not isinstance(similarity, CalibratedSimilarity):
        return None
    curve = similarity.promise
    return None if curve is None else curve.version


def raw_matcher() -> Matcher:
    """Raw distance with its calibration (``dlib-resnet-v1.json``)."""
    return Matcher(CalibratedSimilarity())


def default_matcher() -> Matcher:
    """Cohort normalisation with the calibration fitted on its scores."""
    return Matcher(CalibratedSimilarity(variant=COHORT_VARIANT), ShippedCohort())


NORMALISATIONS = {"cohort": default_matcher, "none": raw_matcher}
"""``FACEGATE_SCORE_NORMALISATION`` values."""


class UncalibratedModel(ValueError):
    """A descriptor model has no calibration of its Similarity: it cannot be a collection's
    model, and its collections' searches are refused (nothing uncalibrated serves a 1:N
    search)."""


def matcher_for(model: DescriptorModel, normalisation: str = "cohort") -> Matcher:
    """The matcher of ``model``: with ``normalisation`` ``cohort``, its cohort and the
    calibration fitted on the normalised score (``<version>.cohort.json``) when it has them,
    else the raw distance's calibration (``<version>.json``); with ``none``, the raw one.
    :class:`UncalibratedModel` if it has neither; ``ValueError`` for a calibration file that
    does not describe this model's distance (its ``"distance"`` names another space, or a
    fused model's has no ``"fusion"`` weights)."""
    directory = "" if model.calibration_dir is None else str(model.calibration_dir)
    variants = (COHORT_VARIANT, "") if normalisation.strip().lower() == "cohort" else ("",)
    for variant in variants:
        if not model.calibrated(variant):
            continue
        doc = calibration_document(model.version, variant, directory)
        declared = doc.get("distance")
        if declared is not None and declared != str(model.space):
            raise ValueError(
                f"the calibration of {model.version} is fitted on {declared} distances, the "
                f"model's are {model.space}"
            )
        weights = None
        if model.kind == FUSED:
            fusion = doc.get("fusion")
            if not isinstance(fusion, dict) or "weights" not in fusion:
                raise ValueError(f"the calibration of {model.version} has no fusion weights")
            weights = model.space.weights_or_ones(fusion["weights"])
        similarity = CalibratedSimilarity(model.version, variant, directory)
        _ = similarity.promise  # a malformed promise curve: ValueError, the model serves nothing
        scorer: PairScorer = ShippedCohort(model.version, directory) if variant else RawScorer()
        return Matcher(similarity, scorer, model.space, weights, model.version)
    raise UncalibratedModel(
        f"the face model {model.version} has no calibration of its Similarity "
        f"(facegate bias calibrate --model {model.version})"
    )


@dataclass
class MatcherSet:
    """One matcher per descriptor model of ``registry``, made on first use. ``default`` is the
    matcher of the server's dlib model as configured (``FACEGATE_SCORE_NORMALISATION``), used
    for it as before; other models get :func:`matcher_for` with the same normalisation."""

    registry: DescriptorRegistry
    default: Matcher
    normalisation: str = "cohort"
    _made: dict[str, Matcher] = field(default_factory=dict, repr=False)

    def for_model(self, version: str) -> Matcher:
        """The matcher of ``version``: :class:`UncalibratedModel` (or ``UnknownModelError``)
        when there is none to be had."""
        if version in (self.default.model_version, self.registry.models[0].version):
            return self.default  # dlib's (with or without flip augmentation), as configured
        made = self._made.get(version)
        if made is None:
            made = matcher_for(self.registry.get(version), self.normalisation)
            self._made[version] = made
        return made

    def servable(self, version: str) -> str | None:
        """None if collections of ``version`` can be searched here, else why not."""
        try:
            self.for_model(version)
        except KeyError:
            return f"this server has no face model {version}"
        except ValueError as exc:
            return str(exc)
        return None


def matcher_named(name: str) -> Matcher:
    """The matcher of a ``FACEGATE_SCORE_NORMALISATION`` value; ``ValueError`` for others."""
    try:
        return NORMALISATIONS[name.strip().lower()]()
    except KeyError:
        raise ValueError(
            f"FACEGATE_SCORE_NORMALISATION must be one of {', '.join(NORMALISATIONS)}, got {name!r}"
        ) from None
