"""The promise curve: the per-pair false match rate governance relies on at each Similarity.

A calibration (:mod:`facegate.engine.similarity`) maps a score to Similarity so that S stands
for the *nominal* rate of the scale (80: 1 in 100, 99: 1 in 10,000) on the data it pooled. On a
population it was not fitted on, the rate at S can be several times that (docs/calibration.md,
"leave one population out"). Similarity stays on the wire as fitted (Rekognition's scale:
answers do not change), but everything that *promises* a rate, the size-aware obligation
``@max_expected_false_candidates``, the expected false candidates of a search and the
transparency page, reads this curve instead: the rate a population left out of the fit can
expect, fitted by ``facegate bias promise`` (:mod:`facegate.bias.promise`) and shipped beside
the calibration as ``<calibration file's stem>.promise.json``.

Contract of :class:`PromiseCurve`:

* knots ``(similarity_pct, fmr)`` with Similarities strictly increasing in [0, 100) and rates
  in (0, 1], never increasing: a higher Similarity never promises more false matches;
* between knots the rate is interpolated linearly in ``log(fmr)`` (the scale's own shape below
  90 is one decade per 10 points); from the last knot to 100 it falls linearly to 0 (the
  scale's shape above 90; nothing is measured there);
* below the first knot the rate at the first knot is returned: a lower bound, as the scale
  does below 70;
* :meth:`PromiseCurve.similarity_for_fmr` is the lowest Similarity whose promised rate is at
  most ``fmr``, the exact inverse of :meth:`PromiseCurve.fmr_at` on the curve.

``version`` is ``promise-<8 hex digits>``, a hash of the knots and the Similarity version they
promise for, checked when the document is read, so an edited file is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROMISE_KIND = "facegate.promise-curve/1"
"""The ``kind`` of a promise-curve document."""


def promise_version(similarity_version: str, knots: Sequence[Sequence[float]]) -> str:
    """``promise-<hash>`` of ``knots`` (``[[similarity_pct, fmr], ...]``) for the mapping
    ``similarity_version``: the name that changes whenever either does."""
    pairs = [[float(s), float(f)] for s, f in knots]
    blob = json.dumps({"similarity_version": similarity_version, "knots": pairs}, sort_keys=True)
    return f"promise-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class PromiseCurve:
    """Promised per-pair false match rate by Similarity (see the module docstring)."""

    version: str
    similarity_version: str
    similarities: tuple[float, ...]
    fmrs: tuple[float, ...]

    def __post_init__(self) -> None:
        s, f = self.similarities, self.fmrs
        if len(s) < 2 or len(s) != len(f):
            raise ValueError("a promise curve needs at least two knots of (similarity, fmr)")
        if any(not 0.0 <= x < 100.0 for x in s) or any(b <= a for a, b in itertools.pairwise(s)):
            raise ValueError("promise knots' similarities must strictly increase within [0, 100)")
        if any(not (0.0 < x <= 1.0) or math.isnan(x) for x in f):
            raise ValueError("promised false match rates must be in (0, 1]")
        if any(b > a for a, b in itertools.pairwise(f)):
            raise ValueError("a promised false match rate must not rise with Similarity")

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PromiseCurve:
        """From a promise document (``kind``, ``version``, ``similarity_version``, ``knots``).
        Raises ``ValueError`` for another kind, malformed knots or a version that is not the
        knots' hash (an edited file)."""
        if doc.get("kind") != PROMISE_KIND:
            raise ValueError(f"not a promise curve: kind {doc.get('kind')!r}")
        try:
            knots: Sequence[Sequence[float]] = doc["knots"]
            similarity_version = str(doc["similarity_version"])
            curve = cls(
                version=str(doc["version"]),
                similarity_version=similarity_version,
                similarities=tuple(float(k[0]) for k in knots),
                fmrs=tuple(float(k[1]) for k in knots),
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"not a promise curve document: {exc!r}") from None
        expected = promise_version(similarity_version, knots)
        if curve.version != expected:
            raise ValueError(f"promise curve version {curve.version} is not its knots' {expected}")
        return curve

    def fmr_at(self, similarity_pct: float) -> float:
        """The promised per-pair false match rate at ``similarity_pct``."""
        s, f = self.similarities, self.fmrs
        x = min(float(similarity_pct), 100.0)
        if x <= s[0]:
            return f[0]
        if x >= s[-1]:
            return f[-1] * (100.0 - x) / (100.0 - s[-1])
        i = next(k for k in range(1, len(s)) if x <= s[k])
        t = (x - s[i - 1]) / (s[i] - s[i - 1])
        return math.exp(math.log(f[i - 1]) + t * (math.log(f[i]) - math.log(f[i - 1])))

    def similarity_for_fmr(self, fmr: float) -> float:
        """The lowest Similarity whose promised rate is at most ``fmr`` (100 for ``fmr <= 0``;
        the first knot for a rate at or above its)."""
        s, f = self.similarities, self.fmrs
        if fmr <= 0.0:
            return 100.0
        if fmr >= f[0]:
            return s[0]
        if fmr < f[-1]:
            return 100.0 - (100.0 - s[-1]) * fmr / f[-1]
        j = next(k for k in range(1, len(s)) if f[k] <= fmr)  # f[j - 1] > fmr >= f[j]
        t = (math.log(fmr) - math.log(f[j - 1])) / (math.log(f[j]) - math.log(f[j - 1]))
        return s[j - 1] + t * (s[j] - s[j - 1])

    def knots(self) -> list[list[float]]:
        """``[[similarity_pct, fmr], ...]`` as stored."""
        return [[s, f] for s, f in zip(self.similarities, self.fmrs, strict=True)]
