"""Confidence intervals for per-group rates and for the summaries that compare groups.

Per-group rates get Wilson intervals (exact counts, no resampling). The summaries (max - min,
Max/GeoMean) are not simple proportions, so they get a bootstrap that resamples the pairs of
one error type within each group (``stats.bootstrap_ci`` with ``strata`` = group), or whole
subjects with ``cluster``. The summaries follow ``rates.Disparity``: zero rates are left
out of the geometric mean, and a resample where every rate is 0 has no Max/GeoMean (dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from facegate.bias.rates import ErrorType, GroupTable, as_labels, as_mask, as_scores
from facegate.bias.stats import WeightedStatistic, bootstrap_ci, wilson_interval

Summary = Literal["max_geomean", "difference", "max"]


@dataclass(frozen=True)
class GroupInterval:
    """A group's rate of one error type with its Wilson interval (``None`` when undefined)."""

    group: str
    kind: ErrorType
    errors: int
    total: int
    rate: float | None
    interval: tuple[float, float] | None


def wilson_by_group(table: GroupTable, kind: ErrorType, ci: float = 0.95) -> list[GroupInterval]:
    """Wilson intervals of every group's FMR or FNMR in ``table`` (small groups included)."""
    out = []
    for row in table.groups:
        errors, total = row.rates.errors(kind)
        out.append(
            GroupInterval(
                row.group,
                kind,
                errors,
                total,
                row.rates.rate(kind),
                wilson_interval(errors, total, ci),
            )
        )
    return out


def summary_statistic(
    codes: NDArray[np.intp], n_groups: int, summary: Summary
) -> WeightedStatistic:
    """A weighted statistic computing one across-group summary of error rates.

    ``values`` passed to it is the 0/1 error indicator of each pair; ``codes`` the group index
    of each pair. Per-group rates are weighted means; groups absent from a resample are NaN.
    """
    onehot = np.zeros((codes.size, n_groups), dtype=np.float64)
    onehot[np.arange(codes.size), codes] = 1.0

    def statistic(values: NDArray[np.float64], weights: NDArray[np.float64]) -> NDArray[np.float64]:
        pairs = weights @ onehot
        errors = (weights * values.reshape(1, -1)) @ onehot
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(pairs > 0, errors / pairs, np.nan)
            top = np.nanmax(rates, axis=1)
            if summary == "max":
                return np.asarray(top, dtype=np.float64)
            if summary == "difference":
                return np.asarray(top - np.nanmin(rates, axis=1), dtype=np.float64)
            positive = np.where(rates > 0, rates, np.nan)
            n_pos = np.sum(np.isfinite(positive), axis=1)
            log_mean = np.nansum(np.log(positive), axis=1) / n_pos
            out: NDArray[np.float64] = np.where(n_pos > 0, top / np.exp(log_mean), np.nan)
        return out

    return statistic


def summary_ci(
    scores: ArrayLike,
    is_mated: ArrayLike,
    groups: ArrayLike | Sequence[Any],
    threshold: float,
    *,
    kind: ErrorType,
    summary: Summary = "max_geomean",
    min_pairs: int,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int,
    cluster: ArrayLike | None = None,
) -> tuple[float, float]:
    """Bootstrap interval of an across-group summary of FMR or FNMR at ``threshold``.

    Uses the pairs of ``kind`` (non-mated for FMR, mated for FNMR) of the groups with at least
    ``min_pairs`` such pairs, as ``rates.by_group`` does; resamples them within each group
    (or by ``cluster`` id within each group). Raises ``ValueError`` when no group qualifies.
    """
    s = as_scores(scores)
    mated = as_mask(is_mated, s.size)
    labels = as_labels(groups, s.size)
    keep = ~mated if kind == "fmr" else mated
    errors = (s <= threshold) if kind == "fmr" else (s > threshold)
    _names, codes, counts = np.unique(labels[keep], return_inverse=True, return_counts=True)
    big = counts >= min_pairs
    if not big.any():
        raise ValueError("no group has enough pairs")
    in_big = big[codes]
    remap = np.cumsum(big) - 1
    used_codes = remap[codes[in_big]].astype(np.intp)
    clusters = None if cluster is None else np.asarray(cluster).reshape(-1)[keep][in_big]
    return bootstrap_ci(
        errors[keep][in_big].astype(np.float64),
        summary_statistic(used_codes, int(big.sum()), summary),
        n_boot=n_boot,
        ci=ci,
        seed=seed,
        strata=used_codes,
        cluster=clusters,
    )
