"""Uncertainty for error rates: Wilson and Clopper-Pearson intervals, a seeded bootstrap, Fisher's
exact test.

Pure numpy and the standard library (``statistics.NormalDist`` for normal quantiles).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: A vectorised weighted statistic: ``statistic(values, weights)`` where ``values`` has shape
#: ``(n, ...)`` (one row per pair) and ``weights`` shape ``(b, n)`` (how many times each pair
#: was drawn in each of ``b`` resamples); returns shape ``(b,)``.
WeightedStatistic = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


def _z(ci: float) -> float:
    if not 0.0 < ci < 1.0:
        raise ValueError("ci must be in (0, 1)")
    return NormalDist().inv_cdf(0.5 + ci / 2.0)


def wilson_interval(errors: int, total: int, ci: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion ``errors / total`` (``None`` when total is 0).

    ``center = (p + z^2 / 2n) / (1 + z^2 / n)``,
    ``half = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)`` (Wilson 1927). Unlike the
    normal (Wald) interval it stays inside [0, 1] and is not empty at 0 errors, which is the
    usual case for false matches: 0 of 10 gives (0, 0.2775) at 95%.
    """
    if total < 0 or not 0 <= errors <= total:
        raise ValueError("need 0 <= errors <= total")
    if total == 0:
        return None
    z = _z(ci)
    n = float(total)
    p = errors / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2.0 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    low = 0.0 if errors == 0 else max(0.0, center - half)
    high = 1.0 if errors == total else min(1.0, center + half)
    return low, high


def _binomial_log_cdf(log_choose: NDArray[np.float64], n: int, p: float) -> float:
    """``log P(X <= k)`` for ``X ~ Binomial(n, p)``; ``log_choose[j] = log C(n, j)``, j <= k."""
    j = np.arange(len(log_choose), dtype=np.float64)
    terms = log_choose + j * math.log(p) + (n - j) * math.log1p(-p)
    top = float(terms.max())
    return top + math.log(float(np.exp(terms - top).sum()))


def _solve_cdf(log_choose: NDArray[np.float64], n: int, target: float) -> float:
    """The ``p`` at which ``P(X <= k) = target`` (decreasing in p): bisection in log p."""
    lo, hi = math.log(1e-300), math.log(1.0 - 1e-16)
    log_target = math.log(target)
    for _ in range(80):  # the bracket is ~690 wide in log p: 80 halvings reach 1e-21
        mid = (lo + hi) / 2.0
        if _binomial_log_cdf(log_choose, n, math.exp(mid)) > log_target:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2.0)


EXACT_ERRORS = 5_000
"""Up to this many errors :func:`clopper_pearson_interval` is exact; above it, Wilson's."""


def clopper_pearson_interval(
    errors: int, total: int, ci: float = 0.95
) -> tuple[float, float] | None:
    """The exact (Clopper-Pearson 1934) interval for ``errors / total`` (``None`` when total is
    0): the ``p`` with ``P(X >= errors) = a/2`` and with ``P(X <= errors) = a/2``, ``a = 1 -
    ci``, solved on the binomial distribution itself (no normal approximation), so it is never
    narrower than the coverage it states; wider than Wilson's at few errors. Above
    :data:`EXACT_ERRORS` errors it returns Wilson's interval (they agree to well under 1% of the
    rate there, and the exact sums grow with ``errors``)."""
    if total < 0 or not 0 <= errors <= total:
        raise ValueError("need 0 <= errors <= total")
    if not 0.0 < ci < 1.0:
        raise ValueError("ci must be in (0, 1)")
    if total == 0:
        return None
    if errors > EXACT_ERRORS:
        return wilson_interval(errors, total, ci)
    alpha = 1.0 - ci
    j = np.arange(errors, dtype=np.float64)
    steps = np.log((total - j) / (j + 1.0))
    log_choose = np.concatenate([[0.0], np.cumsum(steps)])  # log C(n, 0..errors)
    low = 0.0 if errors == 0 else _solve_cdf(log_choose[:-1], total, 1.0 - alpha / 2.0)
    high = 1.0 if errors == total else _solve_cdf(log_choose, total, alpha / 2.0)
    return low, high


def weighted_mean(values: NDArray[np.float64], weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """The default bootstrap statistic: the mean of 1-D ``values`` in each resample.

    With ``values`` a 0/1 error indicator this is the error rate.
    """
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float64] = (weights @ values) / total
    return out


def _units(
    n: int, strata: ArrayLike | None, cluster: ArrayLike | None
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Resampling units: (unit of each pair, stratum of each unit).

    A unit is a pair, or with ``cluster`` a (stratum, cluster id) combination.
    """
    stratum = (
        np.zeros(n, dtype=np.intp)
        if strata is None
        else np.unique(np.asarray(strata).astype(str).reshape(-1), return_inverse=True)[1]
    )
    if stratum.shape[0] != n:
        raise ValueError("strata must have one label per value")
    if cluster is None:
        return np.arange(n, dtype=np.intp), stratum.astype(np.intp)
    ids = np.unique(np.asarray(cluster).astype(str).reshape(-1), return_inverse=True)[1]
    if ids.shape[0] != n:
        raise ValueError("cluster must have one id per value")
    keys = np.stack([stratum, ids], axis=1)
    uniq, unit = np.unique(keys, axis=0, return_inverse=True)
    return unit.reshape(-1).astype(np.intp), uniq[:, 0].astype(np.intp)


def _resample_counts(
    rng: np.random.Generator, unit_stratum: NDArray[np.intp], b: int
) -> NDArray[np.float64]:
    """How many times each unit is drawn in ``b`` resamples, shape ``(b, n_units)``.

    Within each stratum, as many units are drawn with replacement as the stratum holds.
    """
    n_units = unit_stratum.size
    flat: list[NDArray[np.intp]] = []
    rows = (np.arange(b, dtype=np.intp) * n_units)[:, None]
    for s in np.unique(unit_stratum):
        members = np.flatnonzero(unit_stratum == s)
        draws = members[rng.integers(0, members.size, size=(b, members.size))]
        flat.append((rows + draws).reshape(-1))
    counts = np.bincount(np.concatenate(flat), minlength=b * n_units)
    return counts.reshape(b, n_units).astype(np.float64)


def bootstrap_distribution(
    values: ArrayLike,
    statistic: WeightedStatistic = weighted_mean,
    *,
    n_boot: int = 1000,
    seed: int,
    strata: ArrayLike | None = None,
    cluster: ArrayLike | None = None,
    chunk_elements: int = 4_000_000,
) -> NDArray[np.float64]:
    """The statistic on ``n_boot`` seeded bootstrap resamples (shape ``(n_boot,)``).

    See :func:`bootstrap_ci` for the resampling scheme. Resamples are represented as draw
    counts (weights), computed in chunks of about ``chunk_elements`` weights to bound memory.
    """
    vals = np.asarray(values, dtype=np.float64)
    n = vals.shape[0]
    if n == 0:
        raise ValueError("cannot bootstrap an empty sample")
    if n_boot < 1:
        raise ValueError("n_boot must be positive")
    unit, unit_stratum = _units(n, strata, cluster)
    rng = np.random.default_rng(seed)
    step = max(1, chunk_elements // max(n, unit_stratum.size))
    out: list[NDArray[np.float64]] = []
    done = 0
    while done < n_boot:
        b = min(step, n_boot - done)
        weights = _resample_counts(rng, unit_stratum, b)[:, unit]
        out.append(np.asarray(statistic(vals, weights), dtype=np.float64).reshape(b))
        done += b
    return np.concatenate(out)


def bootstrap_ci(
    values: ArrayLike,
    statistic: WeightedStatistic = weighted_mean,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int,
    strata: ArrayLike | None = None,
    cluster: ArrayLike | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over per-pair ``values``, seeded.

    Resampling scheme: **pairs** are drawn with replacement; with ``strata`` (e.g. the
    demographic group of each pair) each stratum is resampled separately and keeps its size,
    so every resample has the same group composition as the data. ``values`` has one row per
    pair (e.g. a 0/1 error indicator, or columns an aggregate statistic needs).

    Dependence caveat: pairs sharing a subject are not independent (one hard-to-recognise
    person contributes many errors), so a pair bootstrap understates the uncertainty. Pass
    ``cluster`` (a subject id per pair; for a pair of two people choose one side, e.g. the
    probe) to resample whole subjects instead, each drawn subject bringing all its pairs;
    within ``strata`` when both are given. Still a one-way cluster bootstrap: the other
    subject of each pair is not resampled.

    Resamples where the statistic is NaN (e.g. no pairs of some kind) are dropped; an error
    is raised if all are. Cost: ``n_boot * n`` weights, time and memory linear in both (every
    resample weighs all ``n`` values once).
    """
    dist = bootstrap_distribution(
        values, statistic, n_boot=n_boot, seed=seed, strata=strata, cluster=cluster
    )
    _z(ci)
    finite = dist[np.isfinite(dist)]
    if finite.size == 0:
        raise ValueError("the statistic is undefined on every resample")
    low, high = np.quantile(finite, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
    return float(low), float(high)


def fisher_exact(a: int, n_a: int, b: int, n_b: int) -> float:
    """Two-sided Fisher exact p-value that ``a / n_a`` and ``b / n_b`` share one proportion.

    Conditional on the total ``a + b``, the count in the first sample is hypergeometric; the
    p-value sums the probabilities of all tables no more likely than the observed one
    (relative tolerance 1e-7, as in R and SciPy). Exact for rare events such as false matches,
    where the two-proportion z-test is unreliable. Returns 1.0 when a sample is empty.
    """
    if not (0 <= a <= n_a and 0 <= b <= n_b):
        raise ValueError("need 0 <= a <= n_a and 0 <= b <= n_b")
    k = a + b
    n = n_a + n_b
    if n_a == 0 or n_b == 0 or k == 0 or k == n:
        return 1.0
    lo, hi = max(0, k - n_b), min(k, n_a)
    x = np.arange(lo, hi + 1, dtype=np.float64)
    # log P(x) up to a constant, via the ratio P(x+1)/P(x) = (k-x)(n_a-x) / ((x+1)(n_b-k+x+1)).
    xs = x[:-1]
    log_ratio = np.log((k - xs) * (n_a - xs)) - np.log((xs + 1.0) * (n_b - k + xs + 1.0))
    logp = np.concatenate([[0.0], np.cumsum(log_ratio)])
    logp -= logp.max()
    p = np.exp(logp)
    p /= p.sum()
    observed = p[a - lo]
    return float(min(1.0, p[p <= observed * (1.0 + 1e-7)].sum()))
