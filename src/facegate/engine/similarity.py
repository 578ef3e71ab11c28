"""From descriptor distance to Rekognition's 0-100 Similarity.

The engine's mapping (:func:`default_similarity`) is **calibrated**: a piecewise-linear,
strictly decreasing map fitted on data by ``facegate bias calibrate`` (see
:mod:`facegate.bias.calibration` and docs/calibration.md) and shipped as
``engine/calibration/<model version>.json``, so that

    Similarity S  <=>  false match rate (100 - S) / 10,000 on the calibration data,

i.e. Similarity 99 is a false match rate of 1 in 10,000 (NIST FRTE's customary FMR=0.0001
operating point), 99.9 is 1 in 100,000, 90 is 1 in 1,000 and 80 is 1 in 500. Distances past the
point where the FMR reaches 1% map to 0. The file also holds the measured table (FMR and FNMR,
overall and per group, on held-out data) published at ``GET /transparency``.

The earlier, uncalibrated mapping stays available as :data:`LOGISTIC_V0`:
``similarity_pct = 100 / (1 + exp(k (d - d0)))`` with ``d`` the Euclidean distance between two
descriptors: strictly decreasing in ``d``, 100 only in the limit, never below 0.

Version ``dlib-logistic-v0`` (provisional, chosen, not fitted on data):

* ``d = 0.6`` -> 80: dlib's customary "same person" distance becomes Rekognition's default
  threshold, so a boto3 caller who keeps the default gets dlib's default decision;
* ``d = 0.4`` -> 99: Amazon's public-safety threshold needs a distance dlib's LFW mated pairs
  usually reach (samples/obama*.jpg pairs are 0.33-0.43 apart; obama vs biden 0.81-0.87).

So ``k = ln(99 / 4) / 0.2 = 16.04`` and ``d0 = 0.6 + ln(4) / k = 0.6864``. On the calibration data
that Similarity 80 turned out to be a false match rate of several percent (docs/calibration.md).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facegate.engine.promise import PromiseCurve


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

    def fmr_at(self, similarity_pct: float) -> float | None:
        """The per-pair false match rate this mapping promises at ``similarity_pct`` (None: the
        mapping is not calibrated, it promises nothing)."""
        ...

    def similarity_for_fmr(self, fmr: float) -> float | None:
        """The lowest Similarity whose promised false match rate is at most ``fmr`` (None: not
        calibrated)."""
        ...


# --- the calibrated scale ------------------------------------------------------------------------

FMR_PER_POINT = 1e-4
"""From Similarity 90 up: FMR(S) = (100 - S) * FMR_PER_POINT."""

LOWEST_CALIBRATED_PCT = 70.0
"""Below this Similarity (FMR 10%) the scale promises nothing."""


def scale_fmr(similarity_pct: float) -> float:
    """The calibrated scale: the false match rate Similarity ``similarity_pct`` stands for.

    ``S >= 90``: ``(100 - S) / 10,000``; ``70 <= S < 90``: ``10 ** (-3 + (90 - S) / 10)``;
    below 70 the scale promises nothing, and the result is 0.1, the rate at 70 (a lower bound:
    use it only to say "at least").
    """
    s = min(100.0, max(float(similarity_pct), LOWEST_CALIBRATED_PCT))
    if s >= 90.0:
        return (100.0 - s) * FMR_PER_POINT
    return float(10.0 ** (-3.0 + (90.0 - s) / 10.0))


def scale_similarity(fmr: float) -> float:
    """The inverse of :func:`scale_fmr`: the lowest Similarity whose rate is at most ``fmr``.

    ``fmr <= 0`` gives 100; ``fmr >= 0.1`` gives 70 (the scale's lowest calibrated point).
    """
    if fmr <= 0.0:
        return 100.0
    if fmr <= 1e-3:
        return 100.0 - fmr / FMR_PER_POINT
    if fmr >= 0.1:
        return LOWEST_CALIBRATED_PCT
    return 90.0 - 10.0 * (math.log10(fmr) + 3.0)


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

    def fmr_at(self, similarity_pct: float) -> float | None:
        """None: a chosen curve, not a calibration."""
        return None

    def similarity_for_fmr(self, fmr: float) -> float | None:
        """None: a chosen curve, not a calibration."""
        return None


LOGISTIC_V0 = LogisticSimilarity.from_anchors("dlib-logistic-v0", 0.4, 99.0, 0.6, 80.0)
"""The provisional mapping described in the module docstring."""


@dataclass(frozen=True)
class PiecewiseSimilarity:
    """Linear interpolation between knots ``(distance_i, similarity_i)``.

    Contract: distances strictly increase from 0, similarities strictly decrease from 100 to 0;
    beyond the last knot the similarity is 0. So the map is continuous, strictly decreasing on
    ``[0, last distance]`` and :meth:`distance_for` is its exact inverse there.
    """

    version: str
    distances: tuple[float, ...]
    similarities: tuple[float, ...]

    def __post_init__(self) -> None:
        d, s = self.distances, self.similarities
        if len(d) < 2 or len(d) != len(s):
            raise ValueError(
                "a piecewise mapping needs at least two knots of (distance, similarity)"
            )
        if d[0] != 0.0 or s[0] != 100.0 or s[-1] != 0.0:
            raise ValueError("knots must start at (0, 100) and end at similarity 0")
        if any(b <= a for a, b in itertools.pairwise(d)) or any(
            b >= a for a, b in itertools.pairwise(s)
        ):
            raise ValueError("knot distances must strictly increase and similarities decrease")

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PiecewiseSimilarity:
        """From a calibration document's ``version`` and ``knots`` (``[[distance, pct], ...]``)."""
        try:
            knots: Sequence[Sequence[float]] = doc["knots"]
            return cls(
                version=str(doc["version"]),
                distances=tuple(float(k[0]) for k in knots),
                similarities=tuple(float(k[1]) for k in knots),
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"not a calibration document: {exc!r}") from None

    def similarity_pct(self, distance: float) -> float:
        """Similarity for one distance."""
        return float(np.interp(distance, self.distances, self.similarities))

    def similarities_pct(self, distances: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Vectorised :meth:`similarity_pct`."""
        d = np.asarray(distances, dtype=np.float64)
        return np.asarray(np.interp(d, self.distances, self.similarities), dtype=np.float64)

    def distance_for(self, similarity_pct: float) -> float:
        """The largest distance whose similarity is at least ``similarity_pct`` (0 < pct < 100)."""
        if not 0.0 < similarity_pct < 100.0:
            raise ValueError("similarity_pct must be strictly between 0 and 100")
        return float(np.interp(similarity_pct, self.similarities[::-1], self.distances[::-1]))

    def fmr_at(self, similarity_pct: float) -> float | None:
        """None: bare knots carry no promise (:class:`CalibratedSimilarity` does)."""
        return None

    def similarity_for_fmr(self, fmr: float) -> float | None:
        """None: bare knots carry no promise (:class:`CalibratedSimilarity` does)."""
        return None


CALIBRATION_PACKAGE = "facegate.engine"
CALIBRATION_DIR = "calibration"


def calibration_file_name(model_version: str, variant: str = "") -> str:
    """``<model>.json`` for the raw distance, ``<model>.<variant>.json`` for a normalised score."""
    return f"{model_version}.{variant}.json" if variant else f"{model_version}.json"


@functools.cache
def calibration_document(
    model_version: str, variant: str = "", directory: str = ""
) -> Mapping[str, Any]:
    """The calibration document of ``model_version`` (read once per process).

    ``variant``: ``""`` for the raw distance's calibration, ``"cohort"`` for the cohort-normalised
    score's (:mod:`facegate.engine.matching`). ``directory``: where it is (an operator's model,
    ``engine.descriptors``); ``""``: shipped in the package. Raises ``FileNotFoundError`` when
    there is none.
    """
    path = _calibration_path(calibration_file_name(model_version, variant), directory)
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("model_version") != model_version:
        raise ValueError(f"calibration file for {model_version} names {doc.get('model_version')!r}")
    return doc


def _calibration_path(name: str, directory: str) -> Path | Traversable:
    """Where a file beside the calibrations is: in ``directory`` (an operator's model), or
    shipped in the package (``""``)."""
    if directory:
        return Path(directory, name)
    return resources.files(CALIBRATION_PACKAGE).joinpath(f"{CALIBRATION_DIR}/{name}")


def _optional_document(name: str, directory: str) -> dict[str, Any] | None:
    """The JSON document ``name`` beside the calibrations (:func:`_calibration_path`), or
    ``None`` when there is no such file."""
    path = _calibration_path(name, directory)
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def holdout_file_name(model_version: str, variant: str = "") -> str:
    """The leave-one-population-out summary beside a calibration file: ``<calibration file's
    stem>.holdout.json`` (written by ``facegate bias holdout --summary``)."""
    return calibration_file_name(model_version, variant).removesuffix(".json") + ".holdout.json"


@functools.cache
def holdout_summary(
    model_version: str, variant: str = "", directory: str = ""
) -> Mapping[str, Any] | None:
    """The shipped calibration's leave-one-population-out summary (``facegate.bias.holdout``:
    the worst ratio of measured to promised false match rate on a population left out of the
    fit), read once per process; ``None`` when there is none. Where it lives as in
    :func:`calibration_document`. Raises ``ValueError`` when it names another model."""
    doc = _optional_document(holdout_file_name(model_version, variant), directory)
    if doc is None:
        return None
    if doc.get("model_version") != model_version:
        raise ValueError(f"hold-out summary for {model_version} names {doc.get('model_version')!r}")
    return doc


def promise_file_name(model_version: str, variant: str = "") -> str:
    """The promise curve beside a calibration file: ``<calibration file's stem>.promise.json``
    (written by ``facegate bias promise --out``)."""
    return calibration_file_name(model_version, variant).removesuffix(".json") + ".promise.json"


@functools.cache
def promise_document(
    model_version: str, variant: str = "", directory: str = ""
) -> Mapping[str, Any] | None:
    """The promise curve's document as shipped (with what set each knot, its held-out check,
    its cost and provenance: ``facegate.bias.promise.promise_file``), read once per process;
    ``None`` when there is none. Not validated: :func:`promise_curve` is what the server uses."""
    return _optional_document(promise_file_name(model_version, variant), directory)


@functools.cache
def promise_curve(
    model_version: str, variant: str = "", directory: str = ""
) -> PromiseCurve | None:
    """The promise curve shipped for ``model_version``'s calibration (:mod:`facegate.engine.
    promise`), read once per process; ``None`` when there is none (the nominal scale is then
    the promise). Where it lives as in :func:`calibration_document`.

    Raises ``ValueError`` (the server does not start) when the document is malformed or edited,
    names another model, promises for another Similarity version than the calibration beside
    it (a recalibration without a refitted promise), or promises less than the nominal scale at
    any knot (a promise curve only widens)."""
    name = promise_file_name(model_version, variant)
    doc = promise_document(model_version, variant, directory)
    if doc is None:
        return None
    if doc.get("model_version") != model_version:
        raise ValueError(f"promise curve for {model_version} names {doc.get('model_version')!r}")
    curve = PromiseCurve.from_json(doc)
    calibrated = _calibrated(model_version, variant, directory).version
    if curve.similarity_version != calibrated:
        raise ValueError(
            f"{name} promises for {curve.similarity_version}, the calibration is {calibrated}: "
            "refit it (facegate bias promise)"
        )
    for s, f in zip(curve.similarities, curve.fmrs, strict=True):
        if s >= LOWEST_CALIBRATED_PCT and f < scale_fmr(s) * (1.0 - 1e-9):
            raise ValueError(f"{name} promises {f:.3g} at Similarity {s:g}, below the scale's")
    return curve


@functools.cache
def _calibrated(model_version: str, variant: str, directory: str = "") -> PiecewiseSimilarity:
    return PiecewiseSimilarity.from_json(calibration_document(model_version, variant, directory))


@dataclass(frozen=True)
class CalibratedSimilarity:
    """The shipped calibration of one descriptor model, loaded on first use (cheap to pickle).

    ``variant`` names the score it maps: ``""`` the raw distance, ``"cohort"`` the normalised
    score of :mod:`facegate.engine.cohort` (then pass it scores, not distances).
    """

    model_version: str = "dlib-resnet-v1"
    variant: str = ""
    directory: str = ""
    """Where the calibration file is (``""``: the package's ``engine/calibration/``)."""

    @property
    def mapping(self) -> PiecewiseSimilarity:
        """The fitted knots (read once per process)."""
        return _calibrated(self.model_version, self.variant, self.directory)

    @property
    def version(self) -> str:
        """The calibration's version, e.g. ``dlib-resnet-v1.fmr-1``."""
        return self.mapping.version

    def similarity_pct(self, distance: float) -> float:
        """Similarity for one distance."""
        return self.mapping.similarity_pct(distance)

    def similarities_pct(self, distances: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Vectorised :meth:`similarity_pct`."""
        return self.mapping.similarities_pct(distances)

    def distance_for(self, similarity_pct: float) -> float:
        """The largest distance whose similarity is at least ``similarity_pct`` (0 < pct < 100)."""
        return self.mapping.distance_for(similarity_pct)

    @property
    def promise(self) -> PromiseCurve | None:
        """The promise curve shipped beside the calibration (None: the nominal scale is the
        promise). Read once per process; the server reads it at start."""
        return promise_curve(self.model_version, self.variant, self.directory)

    def fmr_at(self, similarity_pct: float) -> float | None:
        """The promised false match rate: the promise curve's where one is shipped, else the
        scale's (:func:`scale_fmr`). Similarity itself does not depend on it."""
        curve = self.promise
        return scale_fmr(similarity_pct) if curve is None else curve.fmr_at(similarity_pct)

    def similarity_for_fmr(self, fmr: float) -> float | None:
        """The lowest Similarity whose promised rate is at most ``fmr``: the promise curve's
        where one is shipped, else the scale's (:func:`scale_similarity`)."""
        curve = self.promise
        return scale_similarity(fmr) if curve is None else curve.similarity_for_fmr(fmr)


def default_similarity() -> SimilarityModel:
    """The mapping the engine uses unless configured otherwise: the shipped calibration."""
    return CalibratedSimilarity()


def euclidean(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Euclidean distance between two descriptors (float64 accumulation)."""
    return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))
