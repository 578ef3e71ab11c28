"""A 1:N search's own estimate of its false candidates, from the probe's scores (label-free).

The pipeline hands a search a :class:`FalseCandidates` with the decision's bound on expected
false candidates (``@max_expected_false_candidates``, or None), and reads it back after the
work. The search (:func:`facegate.ops.search.scored_hits`) reads the probe's
:data:`~facegate.engine.tail.TAIL_SIZE` + 1 nearest faces of the collection, scores them, fits
their tail (:mod:`facegate.engine.tail`) and

* with a bound, raises its threshold to the lowest Similarity at which the fit expects at most
  that many false candidates, if that is higher than the threshold it was given (the
  calibrated per-pair rate's, :mod:`facegate.enforce`): the larger, more protective, of the two;
* records the fit's expectation at the threshold finally used.

A collection of fewer than :data:`~facegate.engine.tail.MIN_TAIL_FACES` faces is not fitted
(``method`` stays ``"calibrated"``): the pipeline then reports the calibrated per-pair rate
alone, and says so. Numbers only: no score, descriptor or face id leaves the search.
"""

from __future__ import annotations

from dataclasses import dataclass

CALIBRATED = "calibrated"
"""Only the calibrated per-pair rate x N (no fit: too few faces, or the operation has none)."""
TAIL = "tail"
"""The larger of the calibrated rate and the probe's own tail."""


@dataclass
class FalseCandidates:
    """Filled in by one request's searches (a SearchUsers of several faces: several probes,
    the most protective of each kept). Not thread-safe: one request's searches run in turn."""

    bound: float | None = None
    """The decision's bound on expected false candidates (None: estimate and report only)."""
    faces: int = 0
    """The collection's size, as the index saw it."""
    method: str = CALIBRATED
    tail_expected: float | None = None
    """The largest of the probes' tail expectations at the threshold each search used."""
    raised_to_pct: float | None = None
    """The highest threshold the tail raised a search to (None: it raised none)."""

    def note(self, faces: int, expected: float, raised_to_pct: float | None) -> None:
        """Record one probe's fit: its expectation at its final threshold, and the threshold
        it raised the search to (None: not raised)."""
        self.faces = faces
        self.method = TAIL
        self.tail_expected = max(self.tail_expected or 0.0, expected)
        if raised_to_pct is not None:
            self.raised_to_pct = max(self.raised_to_pct or 0.0, raised_to_pct)
