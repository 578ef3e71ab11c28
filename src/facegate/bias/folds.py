"""LFW's View 2 protocol: ten folds, a threshold learnt on nine, accuracy on the tenth.

Scores are anything where smaller means "more alike" (raw distances or normalised scores); a
pair without a score (NaN: no face found) is an error whatever the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def correct_decisions(d: FloatArray, mated: BoolArray, threshold: float) -> BoolArray:
    """Accept when ``d <= threshold``; a pair without a distance (NaN) is never correct."""
    out: BoolArray = ~np.isnan(d) & ((d <= threshold) == mated)
    return out


def best_threshold(d: FloatArray, mated: BoolArray, empty: float = 0.6) -> float:
    """The distance threshold maximising accuracy on these pairs (exhaustive over all cuts).

    Candidates lie between consecutive distinct distances (or just below the smallest / at the
    largest). Of several maximising cuts the median one is taken. Pairs without a distance are
    errors whatever the threshold, so they do not move the choice.
    """
    valid = ~np.isnan(d)
    if not valid.any():
        return empty
    values, inverse = np.unique(d[valid], return_inverse=True)
    is_mated = mated[valid].astype(np.float64)
    mated_at = np.bincount(inverse, weights=is_mated, minlength=len(values))
    non_at = np.bincount(inverse, weights=1.0 - is_mated, minlength=len(values))
    # Cut k accepts values[:k]: correct = mated accepted + non-mated rejected.
    correct = np.concatenate([[0.0], np.cumsum(mated_at)]) + (
        non_at.sum() - np.concatenate([[0.0], np.cumsum(non_at)])
    )
    best = np.flatnonzero(correct == correct.max())
    k = int(best[len(best) // 2])
    if k == 0:
        return float(np.nextafter(values[0], -np.inf))
    if k == len(values):
        return float(values[-1])
    return float((values[k - 1] + values[k]) / 2.0)


@dataclass(frozen=True)
class CrossValidation:
    accuracies: list[float]
    thresholds: list[float]
    correct: BoolArray
    """Per pair: decided correctly with its own fold's threshold."""
    pair_thresholds: FloatArray
    """Per pair: the threshold its fold was decided with."""


def cross_validate(d: FloatArray, mated: BoolArray, folds: IntArray) -> CrossValidation:
    """Leave-one-fold-out: threshold fitted on the other folds, accuracy on the held-out one."""
    correct = np.zeros(len(d), dtype=bool)
    pair_thresholds = np.zeros(len(d))
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        threshold = best_threshold(d[~test], mated[~test])
        correct[test] = correct_decisions(d[test], mated[test], threshold)
        pair_thresholds[test] = threshold
        accuracies.append(float(correct[test].mean()))
        thresholds.append(threshold)
    return CrossValidation(accuracies, thresholds, correct, pair_thresholds)
