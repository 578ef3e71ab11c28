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
* below ``u`` the tail is exponential: the expected number of faces scoring at most ``t < u`` is
  ``k exp(-(u - t) / scale)``; at or above ``u`` the sample itself says how many there are;
* ``scale`` is the maximum-likelihood estimate of an exponential sample whose ``trim`` largest
  exceedances (the lowest scores: a mate, or a few faces of the probe's own person) are only
  known to be at least the next one's (type II censoring), so up to ``trim`` mates barely move
  it: ``scale = (sum of the k - trim other exceedances + trim * y_(trim+1)) / (k - trim)``.

Why exponential and not a generalized Pareto fit (extreme-value theory, as in Scheirer et al.'s
meta-recognition, 2011): measured on LFW, FairFace and the Congress portraits (bench
``tail_estimate.py``, docs/calibration.md "Per-search estimate"), the fitted Pareto shape of the
lower tail of distances is negative (a bounded tail): extrapolated, it predicts an endpoint past
which nothing can match, and under-predicts the rare false candidates at Similarity 99 that a
promise is about; the exponential over-predicts a little there, which is the safe side.

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

TAIL_TRIM = 3
"""How many of the lowest scores are censored (mates of the probe's own person)."""

MIN_TAIL_FACES = 1000
"""The smallest collection whose tail is fitted (measured: below it the top ``k`` is a large
share of all scores and the estimate drifts, docs/calibration.md); smaller collections fall back
to the calibrated per-pair rate."""


@dataclass(frozen=True)
class TailFit:
    """An exponential lower tail of one probe's scores against ``faces`` stored faces."""

    faces: int
    k: int
    u: float
    scale: float
    lowest: tuple[float, ...]
    """The ``k`` lowest scores, ascending (the empirical part, at and above ``u``)."""

    def expected_at(self, score_limit: float) -> float:
        """The expected number of the faces scoring at most ``score_limit``."""
        if score_limit >= self.u:
            # inside the sample: count it (at least k, all scores up to u)
            return float(np.searchsorted(self.lowest, score_limit, side="right"))
        return self.k * math.exp(-(self.u - score_limit) / self.scale)

    def limit_for(self, expected: float) -> float:
        """The largest score limit at which at most ``expected`` faces are expected (below the
        lowest score when ``expected`` is 0)."""
        if expected <= 0.0:
            return -math.inf
        if expected < self.k:
            return self.u - self.scale * math.log(self.k / expected)
        return self.u  # the bound allows the whole sample (a bound of k or more)


def fit_tail(
    lowest: npt.ArrayLike,
    faces: int,
    *,
    k: int = TAIL_SIZE,
    trim: int = TAIL_TRIM,
    min_faces: int = MIN_TAIL_FACES,
) -> TailFit | None:
    """The tail of a probe's scores: ``lowest`` holds at least ``k + 1`` of its lowest scores
    against ``faces`` stored faces (any order; more are ignored). None when ``faces`` is below
    ``min_faces`` or fewer than ``k + 1`` scores are given (too thin to fit).

    Raises ``ValueError`` on ``k <= trim`` or non-finite scores."""
    if k <= trim or trim < 0:
        raise ValueError(f"need 0 <= trim < k (trim={trim}, k={k})")
    values = np.sort(np.asarray(lowest, dtype=np.float64).ravel())
    if faces < min_faces or len(values) < k + 1:
        return None
    values = values[: k + 1]
    if not np.all(np.isfinite(values)):
        raise ValueError("tail scores must be finite")
    u = float(values[k])
    exceed = u - values[:k]  # descending: the lowest score has the largest exceedance
    kept = exceed[trim:]
    censored = trim * float(exceed[trim]) if trim else 0.0
    scale = (float(kept.sum()) + censored) / (k - trim)
    scale = max(scale, 1e-9)  # ties: every score equal
    return TailFit(faces, k, u, scale, tuple(float(v) for v in values[:k]))
