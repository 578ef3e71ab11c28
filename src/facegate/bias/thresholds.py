"""Thresholds: calibration to a target FMR, DET curves, and the per-group threshold sweep.

Scores are distances and a pair matches when ``distance <= threshold`` (see ``metrics``).
Stricter thresholds are smaller distances. The sweep follows the UK NPL study of NEC NeoFace
for the Met and South Wales Police (2023) [K10][K11]: error rates by demographic group across
a threshold range, and the loosest threshold at which no group is falsely matched
significantly more often than another (NPL found no significant difference at similarity
>= 0.6 and an imbalance at 0.58 and 0.56).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from facegate.bias.rates import ErrorType, as_labels, as_mask, as_scores
from facegate.bias.stats import fisher_exact


def threshold_for_fmr(nonmated_scores: ArrayLike, target_fmr: float) -> float:
    """The largest distance threshold whose FMR on ``nonmated_scores`` is ``<= target_fmr``.

    With ``n`` scores at most ``m = floor(target_fmr * n)`` may match. Sorting the scores as
    ``s[0] <= s[1] <= ...``, FMR(t) <= target exactly when ``t < s[m]``; the set has no
    maximum, so the answer is the largest float below ``s[m]`` (``nextafter``). Ties are
    exact: every score equal to ``s[m]`` is excluded, so FMR may be below the target when
    ties straddle it. ``+inf`` when ``m >= n`` (every pair may match). A tolerance of 1e-9
    absorbs binary rounding in ``target_fmr * n`` (0.29 * 100 is 28.999999999999996).

    The FMR is exact on these scores only: on new data it is an estimate (see the Wilson
    interval of ``m`` in ``n``), and ``m = 0`` when ``n < 1 / target_fmr``.
    """
    s = np.sort(as_scores(nonmated_scores))
    if s.size == 0:
        raise ValueError("no non-mated scores to calibrate on")
    if not 0.0 <= target_fmr <= 1.0:
        raise ValueError("target_fmr must be in [0, 1]")
    m = math.floor(target_fmr * s.size + 1e-9)
    if m >= s.size:
        return math.inf
    return float(np.nextafter(s[m], -np.inf))


def _count_at_most(sorted_scores: NDArray[np.float64], thresholds: NDArray[np.float64]) -> Any:
    return np.searchsorted(sorted_scores, thresholds, side="right")


def _rates(errors: NDArray[np.int64], totals: NDArray[np.int64]) -> NDArray[np.float64]:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float64] = np.where(totals > 0, errors / np.maximum(totals, 1), np.nan)
    return out


@dataclass(frozen=True)
class DetCurve:
    """FMR and FNMR at each threshold (NaN when the corresponding set is empty)."""

    thresholds: NDArray[np.float64]
    fmr: NDArray[np.float64]
    fnmr: NDArray[np.float64]


def det_curve(mated: ArrayLike, nonmated: ArrayLike, thresholds: ArrayLike) -> DetCurve:
    """FMR(t) = #{nonmated <= t} / n and FNMR(t) = #{mated > t} / m for every threshold."""
    t = as_scores(thresholds)
    ms = np.sort(as_scores(mated))
    ns = np.sort(as_scores(nonmated))
    fm = np.asarray(_count_at_most(ns, t), dtype=np.int64)
    fnm = ms.size - np.asarray(_count_at_most(ms, t), dtype=np.int64)
    return DetCurve(
        thresholds=t,
        fmr=_rates(fm, np.full_like(fm, ns.size)),
        fnmr=_rates(fnm, np.full_like(fnm, ms.size)),
    )


@dataclass(frozen=True)
class Sweep:
    """Per-threshold, per-group counts: arrays of shape (thresholds, groups) and (groups,)."""

    thresholds: NDArray[np.float64]
    groups: tuple[str, ...]
    false_matches: NDArray[np.int64]
    nonmated_pairs: NDArray[np.int64]
    false_non_matches: NDArray[np.int64]
    mated_pairs: NDArray[np.int64]

    @property
    def fmr(self) -> NDArray[np.float64]:
        """FMR per (threshold, group); NaN for a group without non-mated pairs."""
        return _rates(
            self.false_matches, np.broadcast_to(self.nonmated_pairs, self.false_matches.shape)
        )

    @property
    def fnmr(self) -> NDArray[np.float64]:
        """FNMR per (threshold, group); NaN for a group without mated pairs."""
        return _rates(
            self.false_non_matches, np.broadcast_to(self.mated_pairs, self.false_non_matches.shape)
        )

    def counts(self, kind: ErrorType) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(errors per threshold and group, pairs per group) for one error type."""
        if kind == "fmr":
            return self.false_matches, self.nonmated_pairs
        return self.false_non_matches, self.mated_pairs


def sweep(
    scores: ArrayLike,
    is_mated: ArrayLike,
    groups: ArrayLike | Sequence[Any],
    thresholds: ArrayLike,
) -> Sweep:
    """Error counts of every group at every threshold (thresholds sorted ascending)."""
    s = as_scores(scores)
    mated = as_mask(is_mated, s.size)
    labels = as_labels(groups, s.size)
    t = np.sort(as_scores(thresholds))
    names = np.unique(labels)
    fm, n_non, fnm, n_mat = [], [], [], []
    for name in names:
        in_group = labels == name
        non = np.sort(s[in_group & ~mated])
        mat = np.sort(s[in_group & mated])
        fm.append(_count_at_most(non, t))
        fnm.append(mat.size - _count_at_most(mat, t))
        n_non.append(non.size)
        n_mat.append(mat.size)
    k = names.size
    return Sweep(
        thresholds=t,
        groups=tuple(str(n) for n in names),
        false_matches=np.asarray(fm, dtype=np.int64).reshape(k, t.size).T.copy(),
        nonmated_pairs=np.asarray(n_non, dtype=np.int64),
        false_non_matches=np.asarray(fnm, dtype=np.int64).reshape(k, t.size).T.copy(),
        mated_pairs=np.asarray(n_mat, dtype=np.int64),
    )


@dataclass(frozen=True)
class BalanceCheck:
    """The pairwise tests at one threshold: the most significant pair and its p-value."""

    threshold: float
    balanced: bool
    min_p: float
    worst_pair: tuple[str, str] | None


@dataclass(frozen=True)
class BalanceResult:
    """The loosest threshold, scanning from the strictest, before the first imbalance.

    ``threshold`` is ``None`` when even the strictest threshold is imbalanced;
    ``first_imbalanced`` is ``None`` when every threshold is balanced.
    """

    threshold: float | None
    first_imbalanced: float | None
    kind: ErrorType
    significance: float
    bonferroni: bool
    groups: tuple[str, ...]
    too_small: tuple[str, ...]
    checks: tuple[BalanceCheck, ...]


def lowest_balanced_threshold(
    result: Sweep,
    *,
    significance: float = 0.05,
    min_pairs: int = 1,
    kind: ErrorType = "fmr",
    bonferroni: bool = True,
) -> BalanceResult:
    """The loosest swept threshold at which no two groups differ significantly in FMR.

    At each threshold every pair of measurable groups (at least ``min_pairs`` pairs of the
    type) is compared with Fisher's exact test (``stats.fisher_exact``; exact for the small
    counts typical of false matches, where a z-test misleads). With ``bonferroni`` a pair
    differs significantly when ``p < significance / number_of_pairs``, so the chance of a
    spurious imbalance at one threshold stays near ``significance`` however many groups there
    are. Thresholds are scanned from the strictest (smallest distance) to the loosest; the
    answer is the last threshold before the first imbalanced one, so every stricter swept
    threshold is balanced too. In NPL's similarity terms it is the *lowest* balanced
    similarity threshold. ``kind="fnmr"`` tests false non-matches instead.
    """
    if not 0.0 < significance < 1.0:
        raise ValueError("significance must be in (0, 1)")
    errors, totals = result.counts(kind)
    used = [i for i, n in enumerate(totals) if n >= min_pairs]
    small = tuple(result.groups[i] for i, n in enumerate(totals) if 0 < n < min_pairs)
    pairs = list(combinations(used, 2))
    level = significance / len(pairs) if bonferroni and pairs else significance
    checks: list[BalanceCheck] = []
    best: float | None = None
    first_bad: float | None = None
    for row, t in enumerate(result.thresholds):
        min_p, worst = 1.0, None
        for i, j in pairs:
            p = fisher_exact(
                int(errors[row, i]), int(totals[i]), int(errors[row, j]), int(totals[j])
            )
            if worst is None or p < min_p:
                min_p, worst = p, (result.groups[i], result.groups[j])
        balanced = min_p >= level
        checks.append(BalanceCheck(float(t), balanced, min_p, worst))
        if first_bad is None:
            if balanced:
                best = float(t)
            else:
                first_bad = float(t)
    return BalanceResult(
        threshold=best,
        first_imbalanced=first_bad,
        kind=kind,
        significance=significance,
        bonferroni=bonferroni,
        groups=tuple(result.groups[i] for i in used),
        too_small=small,
        checks=tuple(checks),
    )
