"""How many false candidates a 1:N search expects, estimated from the probe's own scores.

In a search of ``N`` faces nearly every comparison is with a stranger: the probe's scores against
the collection are a sample of *its* impostor distribution, for this population and this image
source, without a label. The per-pair calibration (:mod:`facegate.engine.similarity`) promises
a rate fitted on other data; on people and images it was not fitted on it can be exceeded
10-100 times (docs/calibration.md). This module estimates the expected number of faces at or
past a threshold from the lower tail of the probe's scores (smaller is more alike, as for
distances), a peaks-over-threshold model:

* the ``k`` lowest scores ``s_1 <= ... <= s_k`` of the ``N`` and the next one, ``u = s_(k+1)``,
  give ``k`` exceedances ``y_i = u - s_i > 0``;
* the exceedances follow a generalized Pareto distribution (Pickands-Balkema-de Haan; the
  extreme-value fitting of the non-match tail in Scheirer et al.'s meta-recognition, 2011):
  ``P(Y > y) = (1 + shape y / scale) ** (-1 / shape)``, so the expected number of faces scoring
  at most ``t < u`` is ``k (1 + shape (u - t) / scale) ** (-1 / shape)`` (0 past the endpoint
  ``-scale / shape`` of a bounded tail, ``shape < 0``); at or above ``u`` the sample itself says
  how many there are (at least ``k``: a lower bound);
* shape and scale are fitted by probability-weighted moments (Hosking and Wallis, 1987): closed
  form, no iteration, a few microseconds for ``k = 100``.

Why not a simpler exponential tail (shape 0): measured on LFW, FairFace and the Congress
portraits (bench ``tail_estimate.py``, docs/calibration.md "Per-search estimate"), the lower tail
of normalised scores is bounded (fitted shape -0.1 to -0.2): the exponential over-predicts the
false candidates at Similarity 99 1.3-6x, the Pareto fit is within 0.9-1.3x at 12,617 faces.
Where a bounded tail says "none" the caller still has the calibrated rate: facegate uses the
larger of the two.

Contract: :func:`fit_tail` needs at least :data:`MIN_TAIL_FACES` faces (fewer: None, and the
caller falls back to the calibrated per-pair rate, saying so). :meth:`TailFit.expected_at` is
non-decreasing in the score limit; :meth:`TailFit.limit_for` is its inverse (the largest limit
whose expectation is at most a bound). Pure numpy, no state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TAIL_SIZE = 100
"""``k``: how many of the lowest scores the fit reads (measured: docs/calibration.md)."""

MIN_TAIL_FACES = 1000
"""The smallest collection whose tail is fitted (measured: below it the top ``k`` is a large
share of all scores and the estimate drifts, docs/calibration.md); smaller collections fall back
to the calibrated per-pair rate."""

MAX_OUTLIERS = 5
"""At most this many of the lowest scores are set aside as mates (:func:`fit_tail`)."""

OUTLIER_EXPECTED = 0.05
"""A lowest score is a mate when an exponential tail of the others expects fewer faces than this
to reach it (meta-recognition's test, with the probability of a stranger that low)."""

_SHAPE_RANGE = (-0.5, 0.45)
"""Shapes the fit may take: probability-weighted moments need shape < 0.5."""


@dataclass(frozen=True)
class TailFit:
    """A generalized Pareto lower tail of one probe's scores against ``faces`` stored faces."""

    faces: int
    k: int
    u: float
    shape: float
    scale: float
    lowest: tuple[float, ...]
    """The ``k`` lowest impostor scores, ascending (the empirical part, at and above ``u``)."""
    skipped: int = 0
    """How many lower scores were set aside as the probe's own person (not impostors)."""

    def _survival(self, y: float) -> float:
        """``P(Y > y)`` of the fitted exceedances."""
        if abs(self.shape) < 1e-9:
            return math.exp(-y / self.scale)
        z = 1.0 + self.shape * y / self.scale
        return 0.0 if z <= 0.0 else float(z ** (-1.0 / self.shape))

    def expected_at(self, score_limit: float) -> float:
        """The expected number of the faces scoring at most ``score_limit`` (at or above ``u``:
        the count in the sample, a lower bound)."""
        if score_limit >= self.u:
            return float(np.searchsorted(self.lowest, score_limit, side="right"))
        return self.k * self._survival(self.u - score_limit)

    def limit_for(self, expected: float) -> float:
        """The largest score limit at which at most ``expected`` faces are expected (``-inf``
        when ``expected`` is 0; ``u`` for a bound of ``k`` or more)."""
        if expected <= 0.0:
            return -math.inf
        if expected >= self.k:
            return self.u
        ratio = self.k / expected
        if abs(self.shape) < 1e-9:
            return self.u - self.scale * math.log(ratio)
        return self.u - self.scale / self.shape * (float(ratio**self.shape) - 1.0)


def pwm_fit(exceedances: npt.ArrayLike) -> tuple[float, float]:
    """(shape, scale) of a generalized Pareto sample by probability-weighted moments (Hosking
    and Wallis 1987, plotting positions ``(i - 0.35) / n``); the shape is clipped to
    [-0.5, 0.45]; an exponential fit (shape 0, the mean) where the moments are degenerate."""
    y = np.sort(np.asarray(exceedances, dtype=np.float64))
    n = len(y)
    mean = float(y.mean())
    p = (np.arange(1, n + 1) - 0.35) / n
    a1 = float(np.mean((1.0 - p) * y))
    denominator = mean - 2.0 * a1
    if n < 3 or denominator <= 0.0 or mean <= 0.0:
        return 0.0, max(mean, 1e-9)
    hosking_k = mean / denominator - 2.0  # Hosking's k is minus the shape
    scale = 2.0 * mean * a1 / denominator
    shape = min(max(-hosking_k, _SHAPE_RANGE[0]), _SHAPE_RANGE[1])
    if shape != -hosking_k:  # clipped: keep the mean right, E[Y] = scale / (1 - shape)
        scale = mean * (1.0 - shape)
    return shape, max(scale, 1e-9)


def _fit(values: npt.NDArray[np.float64], faces: int, k: int, skipped: int) -> TailFit:
    """The fit of ``values`` (ascending, ``k + 1`` of them) without its ``skipped`` lowest."""
    u = float(values[k])
    kept = values[skipped:k]
    shape, scale = pwm_fit(u - kept)
    return TailFit(faces, k - skipped, u, shape, scale, tuple(float(v) for v in kept), skipped)


def fit_tail(
    lowest: npt.ArrayLike,
    faces: int,
    *,
    k: int = TAIL_SIZE,
    min_faces: int = MIN_TAIL_FACES,
    max_outliers: int = MAX_OUTLIERS,
    outlier_expected: float = OUTLIER_EXPECTED,
) -> TailFit | None:
    """The impostor tail of a probe's scores: ``lowest`` holds at least ``k + 1`` of its lowest
    scores against ``faces`` stored faces (any order; more are ignored). None when ``faces`` is
    below ``min_faces`` or fewer than ``k + 1`` scores are given (too thin to fit).

    Mates (the probe's own person, whose scores are not impostor scores) are set aside as in
    meta-recognition: while the lowest remaining score is one an exponential tail of the others
    expects fewer than ``outlier_expected`` faces to reach, it is skipped (at most
    ``max_outliers``).

    Raises ``ValueError`` on ``k < max_outliers + 3`` or non-finite scores."""
    if k < max_outliers + 3:
        raise ValueError(f"a tail of at least {max_outliers + 3} scores is needed (k={k})")
    values = np.sort(np.asarray(lowest, dtype=np.float64).ravel())
    if faces < min_faces or len(values) < k + 1:
        return None
    values = values[: k + 1]
    if not np.all(np.isfinite(values)):
        raise ValueError("tail scores must be finite")
    u = float(values[k])
    skipped = 0
    while skipped < max_outliers:
        # judged by an exponential tail of the others (heavier than a bounded Pareto fit,
        # which would call the lowest of many strangers impossible): the expected number of
        # faces at or below this score
        rest = u - values[skipped + 1 : k]
        others = len(rest) * math.exp(-(u - float(values[skipped])) / max(rest.mean(), 1e-9))
        if others >= outlier_expected:
            break
        skipped += 1
    return _fit(values, faces, k, skipped)
