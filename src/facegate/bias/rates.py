"""Verification error rates, per group, and the summaries that compare groups.

Scores are **distances**: lower means more similar, and a pair *matches* when
``distance <= threshold`` (a tie exactly at the threshold is a match). Callers holding
similarity scores (higher = more similar) pass ``-similarity`` and ``-threshold``.

Definitions (ISO/IEC 19795-1 vocabulary; sources in
``shared/reference/governance-rules.md`` sections 2 and 2a):

- FNMR (false non-match rate): the share of *mated* pairs (same person) that do NOT match.
- FMR (false match rate): the share of *non-mated* pairs (different people) that match.
- Max/GeoMean (NIST FRVT Part 8, draft NISTIR 8429 [B10]): for one error type, the highest
  group rate divided by the geometric mean of the group rates; 1 = parity.
- FDR, Fairness Discrepancy Rate (de Freitas Pereira & Marcel, arXiv 2011.02395 [B12]):
  ``FDR(t) = 1 - (alpha * A(t) + (1 - alpha) * B(t))`` with ``A`` the largest pairwise
  difference of group FMRs and ``B`` the largest pairwise difference of group FNMRs.
  1 = perfectly fair.

An empty set of pairs has an undefined rate (``None``), never ``0`` and never a 0/0 crash.
Groups are compared with :class:`Disparity`, in fairlearn's ``MetricFrame`` vocabulary
(``by_group``, ``group_max``, ``group_min``, ``difference``, ``ratio``); the attribute
classifier audit (:mod:`facegate.bias.classifier`) compares its error rates with the same class.
(The service's Prometheus counters are :mod:`facegate.metrics`, unrelated.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

ErrorType = Literal["fmr", "fnmr"]


def _rate(errors: int, total: int) -> float | None:
    return errors / total if total > 0 else None


def as_scores(scores: ArrayLike) -> NDArray[np.float64]:
    """Scores as a 1-D float array; NaN scores are rejected (they would silently not match)."""
    arr = np.asarray(scores, dtype=np.float64).reshape(-1)
    if np.isnan(arr).any():
        raise ValueError("scores contain NaN")
    return arr


def as_labels(groups: ArrayLike | Sequence[Any], n: int) -> NDArray[np.str_]:
    """Group labels as a 1-D string array of length ``n``."""
    arr = np.asarray(groups).astype(str).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{arr.shape[0]} group labels for {n} scores")
    return arr


def as_mask(is_mated: ArrayLike, n: int) -> NDArray[np.bool_]:
    """Mated flags as a 1-D bool array of length ``n``."""
    arr = np.asarray(is_mated, dtype=bool).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{arr.shape[0]} mated flags for {n} scores")
    return arr


@dataclass(frozen=True)
class Rates:
    """Error counts at one threshold; the rates are derived and ``None`` when undefined."""

    threshold: float
    false_matches: int
    nonmated_pairs: int
    false_non_matches: int
    mated_pairs: int

    @property
    def fmr(self) -> float | None:
        """False match rate: false_matches / nonmated_pairs, ``None`` without non-mated pairs."""
        return _rate(self.false_matches, self.nonmated_pairs)

    @property
    def fnmr(self) -> float | None:
        """False non-match rate: false_non_matches / mated_pairs, ``None`` without mated pairs."""
        return _rate(self.false_non_matches, self.mated_pairs)

    def errors(self, kind: ErrorType) -> tuple[int, int]:
        """(errors, total) for one error type."""
        if kind == "fmr":
            return self.false_matches, self.nonmated_pairs
        return self.false_non_matches, self.mated_pairs

    def rate(self, kind: ErrorType) -> float | None:
        """The rate of one error type."""
        return self.fmr if kind == "fmr" else self.fnmr

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-ready form, counts and rates."""
        return {
            "threshold": self.threshold,
            "false_matches": self.false_matches,
            "nonmated_pairs": self.nonmated_pairs,
            "fmr": self.fmr,
            "false_non_matches": self.false_non_matches,
            "mated_pairs": self.mated_pairs,
            "fnmr": self.fnmr,
        }


def error_rates(mated_scores: ArrayLike, nonmated_scores: ArrayLike, threshold: float) -> Rates:
    """FNMR and FMR at ``threshold`` (match when ``distance <= threshold``).

    FNMR = share of mated scores ``> threshold``; FMR = share of non-mated scores
    ``<= threshold``. Either input may be empty: its rate is then ``None``.
    """
    mated = as_scores(mated_scores)
    nonmated = as_scores(nonmated_scores)
    return Rates(
        threshold=float(threshold),
        false_matches=int(np.count_nonzero(nonmated <= threshold)),
        nonmated_pairs=int(nonmated.size),
        false_non_matches=int(np.count_nonzero(mated > threshold)),
        mated_pairs=int(mated.size),
    )


@dataclass(frozen=True)
class GroupRates:
    """One group's counts, with whether each error type has enough pairs to be measured."""

    group: str
    rates: Rates
    fmr_measurable: bool
    fnmr_measurable: bool

    def measurable(self, kind: ErrorType) -> bool:
        """Whether this group counts in the summaries of ``kind``."""
        return self.fmr_measurable if kind == "fmr" else self.fnmr_measurable


@dataclass(frozen=True)
class Disparity:
    """How one rate varies across groups, in the vocabulary of fairlearn's ``MetricFrame``.

    ``by_group`` holds the rate of each measured group, in group order; ``too_small`` the
    groups with some but too few observations, listed and left out. Everything else follows
    from ``by_group`` (``None``, or empty, when no group is measured):

    - ``group_max`` / ``group_min``: the highest and lowest rate (fairlearn's ``group_max()``,
      ``group_min()``); ``max_groups`` / ``min_groups``: every group at that rate (ties kept,
      in group order).
    - ``difference``: ``group_max - group_min`` (fairlearn's ``difference()``, between groups).
    - ``ratio``: ``group_max / group_min`` (``None`` when ``group_min`` is 0). fairlearn's
      ``ratio()`` is the reciprocal, min / max in [0, 1]; facegate keeps max / min (>= 1, 1 =
      parity) because it reads in the same direction as Max/GeoMean beside it, and its
      reports have always printed it so (the JSON key ``ratio`` is unchanged).
    - ``geomean``: the geometric mean over the groups whose rate is non-zero; ``max_geomean``
      = ``group_max / geomean`` (``None`` when every rate is 0); ``zero_groups``: the groups
      left out of that mean (:func:`disparity` says why).

    With one measured group: difference 0, ratio and max_geomean 1 (if its rate is non-zero).
    """

    by_group: Mapping[str, float]
    too_small: tuple[str, ...] = ()

    @property
    def groups(self) -> tuple[str, ...]:
        """The measured groups, in order."""
        return tuple(self.by_group)

    @property
    def group_max(self) -> float | None:
        return max(self.by_group.values()) if self.by_group else None

    @property
    def group_min(self) -> float | None:
        return min(self.by_group.values()) if self.by_group else None

    @property
    def max_groups(self) -> tuple[str, ...]:
        return tuple(g for g, v in self.by_group.items() if v == self.group_max)

    @property
    def min_groups(self) -> tuple[str, ...]:
        return tuple(g for g, v in self.by_group.items() if v == self.group_min)

    @property
    def difference(self) -> float | None:
        top, bottom = self.group_max, self.group_min
        return None if top is None or bottom is None else top - bottom

    @property
    def ratio(self) -> float | None:
        top, bottom = self.group_max, self.group_min
        return None if top is None or bottom is None or bottom <= 0 else top / bottom

    @property
    def zero_groups(self) -> tuple[str, ...]:
        return tuple(g for g, v in self.by_group.items() if v == 0)

    @property
    def geomean(self) -> float | None:
        nonzero = [v for v in self.by_group.values() if v > 0]
        return math.exp(sum(math.log(v) for v in nonzero) / len(nonzero)) if nonzero else None

    @property
    def max_geomean(self) -> float | None:
        top, mean = self.group_max, self.geomean
        return None if top is None or mean is None else top / mean


def disparity(rows: Sequence[GroupRates], kind: ErrorType) -> Disparity:
    """One error type's rates over the measurable rows, and the groups too small to measure.

    Zeros in Max/GeoMean: a geometric mean with a zero factor is 0 and the ratio infinite,
    which says more about the sample size than about the algorithm. The stored sources for
    NIST's draft NISTIR 8429 [B10] do not say how NIST treats zero rates (NF), so
    :class:`Disparity` takes the geometric mean over the groups whose rate is non-zero and
    reports the excluded groups in ``zero_groups``. Excluding zeros raises the mean, so the
    reported Max/GeoMean is a *lower bound* on the disparity: read it with ``zero_groups`` and
    the per-group intervals, never alone.
    """
    small = tuple(r.group for r in rows if not r.measurable(kind) and r.rates.errors(kind)[1] > 0)
    rates = {r.group: r.rates.rate(kind) for r in rows if r.measurable(kind)}
    return Disparity({g: v for g, v in rates.items() if v is not None}, small)


def fairness_discrepancy_rate(fmr: Disparity, fnmr: Disparity, alpha: float = 0.5) -> float | None:
    """FDR = 1 - (alpha * A + (1 - alpha) * B) [B12].

    A (B) is the largest pairwise |FMR_i - FMR_j| (|FNMR_i - FNMR_j|), which equals max - min
    over the measurable groups; it is 0 with a single group. ``None`` when either error type
    has no measurable group, unless its weight is 0 (alpha = 0 ignores FMR, alpha = 1 FNMR).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    a = fmr.difference
    b = fnmr.difference
    if (a is None and alpha > 0) or (b is None and alpha < 1):
        return None
    return 1.0 - (alpha * (a or 0.0) + (1.0 - alpha) * (b or 0.0))


@dataclass(frozen=True)
class GroupTable:
    """Per-group error rates at one global threshold, with overall and comparison summaries."""

    threshold: float
    min_pairs: int
    alpha: float
    overall: Rates
    groups: tuple[GroupRates, ...]
    fmr: Disparity
    fnmr: Disparity
    fdr: float | None

    @property
    def too_small(self) -> tuple[str, ...]:
        """Groups too small to measure for at least one error type they have pairs of."""
        small = set(self.fmr.too_small) | set(self.fnmr.too_small)
        return tuple(g.group for g in self.groups if g.group in small)

    def group(self, name: str) -> GroupRates:
        """The row of one group."""
        for row in self.groups:
            if row.group == name:
                return row
        raise KeyError(name)


def group_counts(
    scores: ArrayLike, is_mated: ArrayLike, groups: ArrayLike | Sequence[Any], threshold: float
) -> tuple[tuple[str, ...], list[Rates]]:
    """Per-group counts at one threshold (sorted group names), vectorised with bincount."""
    s = as_scores(scores)
    mated = as_mask(is_mated, s.size)
    names, codes = np.unique(as_labels(groups, s.size), return_inverse=True)
    k = names.size
    match = s <= threshold
    n_mated = np.bincount(codes, weights=mated, minlength=k)
    n_nonmated = np.bincount(codes, weights=~mated, minlength=k)
    fm = np.bincount(codes, weights=match & ~mated, minlength=k)
    fnm = np.bincount(codes, weights=~match & mated, minlength=k)
    rows = [
        Rates(float(threshold), int(fm[i]), int(n_nonmated[i]), int(fnm[i]), int(n_mated[i]))
        for i in range(k)
    ]
    return tuple(str(n) for n in names), rows


def by_group(
    scores: ArrayLike,
    is_mated: ArrayLike,
    groups: ArrayLike | Sequence[Any],
    threshold: float,
    *,
    min_pairs: int,
    alpha: float = 0.5,
) -> GroupTable:
    """FMR and FNMR per group at one threshold, with overall, Max/GeoMean and FDR.

    A group with fewer than ``min_pairs`` non-mated (mated) pairs is *too small to measure*
    for FMR (FNMR): it stays in ``groups`` with its counts, is listed in ``too_small`` and is
    left out of that error type's summaries and of FDR. A group with no pairs of a type (an
    impostor-only data set has no mated pairs) simply has no rate of that type.
    """
    if min_pairs < 1:
        raise ValueError("min_pairs must be at least 1")
    s = as_scores(scores)
    mated = as_mask(is_mated, s.size)
    names, counts = group_counts(s, mated, groups, threshold)
    rows = tuple(
        GroupRates(
            group=name,
            rates=r,
            fmr_measurable=r.nonmated_pairs >= min_pairs,
            fnmr_measurable=r.mated_pairs >= min_pairs,
        )
        for name, r in zip(names, counts, strict=True)
    )
    fmr = disparity(rows, "fmr")
    fnmr = disparity(rows, "fnmr")
    return GroupTable(
        threshold=float(threshold),
        min_pairs=min_pairs,
        alpha=alpha,
        overall=error_rates(s[mated], s[~mated], threshold),
        groups=rows,
        fmr=fmr,
        fnmr=fnmr,
        fdr=fairness_discrepancy_rate(fmr, fnmr, alpha),
    )
