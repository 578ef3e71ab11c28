"""Verification error rates per demographic group, at Similarity thresholds, from descriptors.

A *pair* (two manifest samples) is scored by the Euclidean distance between the two images'
descriptors; it *matches* at Similarity threshold ``s`` when its distance is at most
``similarity.distance_for(s)`` (the versioned distance -> Similarity mapping of
:mod:`facegate.engine.similarity`; Similarity 80 is distance 0.6 and 99 is 0.4 in
``dlib-logistic-v0``).

Definitions (ISO/IEC 19795-1; sources in ``shared/reference/governance-rules.md`` 2 and 2a):

* FNMR: share of mated pairs (same subject) that do not match;
* FMR: share of non-mated pairs (different subjects) that match;
* Max/GeoMean, max - min, max / min, FDR: as in :mod:`facegate.bias.rates`.

A pair belongs to a group when both of its samples do (``group_by`` attributes, intersectional
with several). A pair whose samples are in different groups is *cross-group*: its rates are
reported on their own, outside the group table and its summaries. A pair with an image where no
face was found (or that could not be decoded) has no distance: it is counted per group as
*unscored* and reported, never silently dropped and never counted as a match or non-match.

Uncertainty: Wilson intervals per group (:func:`facegate.bias.intervals.wilson_by_group`) and a
bootstrap interval of Max/GeoMean (:func:`facegate.bias.intervals.summary_ci`) resampling the
left sample's subject (pairs of one subject move together; FairFace samples without a subject
are their own cluster).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facegate.bias.datasets import Manifest, Pair
from facegate.bias.groups import group_key
from facegate.bias.intervals import GroupInterval, summary_ci, wilson_by_group
from facegate.bias.rates import ErrorType, GroupTable, Rates, by_group, error_rates
from facegate.bias.stats import wilson_interval
from facegate.bias.thresholds import det_curve, lowest_balanced_threshold, sweep
from facegate.engine.matching import PairScorer
from facegate.engine.similarity import SimilarityModel, default_similarity

CROSS_GROUP = "(cross-group)"
"""The label of a pair whose two samples are in different groups."""


@dataclass(frozen=True)
class ScoredPairs:
    """Pairs with their distances, aligned arrays (one entry per pair).

    ``distances`` is NaN where either image has no descriptor (``scored`` is then false).
    ``groups`` is the pair's group, or :data:`CROSS_GROUP`; ``clusters`` the left sample's
    subject (``#<index>`` for a sample without a subject id).
    """

    pairs: tuple[Pair, ...]
    distances: NDArray[np.float64]
    mated: NDArray[np.bool_]
    groups: NDArray[np.str_]
    clusters: NDArray[np.str_]

    @property
    def scored(self) -> NDArray[np.bool_]:
        """Pairs with a distance (both images have a face descriptor)."""
        return np.asarray(np.isfinite(self.distances), dtype=np.bool_)

    def unscored_counts(self) -> dict[str, dict[str, int]]:
        """Pairs without a distance per group: ``{group: {"mated": n, "nonmated": n}}``."""
        out: dict[str, dict[str, int]] = {}
        missing = ~self.scored
        counts = Counter(
            zip(self.groups[missing].tolist(), self.mated[missing].tolist(), strict=True)
        )
        for group in sorted(set(self.groups.tolist())):
            out[group] = {
                "mated": counts.get((group, True), 0),
                "nonmated": counts.get((group, False), 0),
            }
        return out


def pair_distances(
    vectors: NDArray[np.floating[Any]], pairs: Sequence[Pair], scorer: PairScorer | None = None
) -> NDArray[np.float64]:
    """Euclidean distance of each pair (float64), NaN when a side's vector has NaN.

    ``scorer``: return its scores instead (e.g. the cohort-normalised score; still NaN without
    a vector), for use with the Similarity calibrated on that scorer."""
    if not pairs:
        return np.zeros(0, dtype=np.float64)
    left = np.fromiter((p.left for p in pairs), dtype=np.intp, count=len(pairs))
    right = np.fromiter((p.right for p in pairs), dtype=np.intp, count=len(pairs))
    out = np.empty(len(pairs), dtype=np.float64)
    step = 65_536  # bounded memory: at most step x dim float64 differences at a time
    for start in range(0, len(pairs), step):
        sl = slice(start, start + step)
        diff = vectors[left[sl]].astype(np.float64) - vectors[right[sl]].astype(np.float64)
        out[sl] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    if scorer is not None:
        stats = np.full(len(vectors), np.nan)
        found = np.isfinite(vectors).all(axis=1)
        stats[found] = scorer.stats(vectors[found])
        out = scorer.scores(out, stats[left], stats[right])
    return out


def score_pairs(
    manifest: Manifest,
    vectors: NDArray[np.floating[Any]],
    pairs: Sequence[Pair],
    group_by: Sequence[str],
    scorer: PairScorer | None = None,
) -> ScoredPairs:
    """Distances (``scorer``'s scores if given), mated flags, groups and subject clusters of
    ``pairs`` over ``manifest``."""
    if vectors.shape[0] != len(manifest):
        raise ValueError(f"{vectors.shape[0]} descriptor rows for {len(manifest)} samples")
    keys = [group_key(s, group_by) for s in manifest.samples]
    groups = [keys[p.left] if keys[p.left] == keys[p.right] else CROSS_GROUP for p in pairs]
    clusters = [manifest.samples[p.left].subject_id or f"#{p.left}" for p in pairs]
    return ScoredPairs(
        pairs=tuple(pairs),
        distances=pair_distances(vectors, pairs, scorer),
        mated=np.array([p.mated for p in pairs], dtype=np.bool_),
        groups=np.array(groups, dtype=np.str_),
        clusters=np.array(clusters, dtype=np.str_),
    )


@dataclass(frozen=True)
class ThresholdResult:
    """Everything measured at one Similarity threshold.

    ``table``: per-group rates over within-group scored pairs (``None`` when there are none);
    ``fmr_ci``/``fnmr_ci``: Wilson intervals per group; ``fmr_max_geomean_ci`` /
    ``fnmr_max_geomean_ci``: bootstrap interval of Max/GeoMean (``None`` when undefined, e.g. all
    rates 0 or no measurable group); ``cross``: rates of the cross-group pairs (``None`` if none).
    """

    similarity_pct: float
    distance: float
    table: GroupTable | None
    fmr_ci: tuple[GroupInterval, ...]
    fnmr_ci: tuple[GroupInterval, ...]
    fmr_max_geomean_ci: tuple[float, float] | None
    fnmr_max_geomean_ci: tuple[float, float] | None
    cross: Rates | None


def _max_geomean_ci(
    scored: ScoredPairs,
    within: NDArray[np.bool_],
    distance: float,
    kind: ErrorType,
    *,
    min_pairs: int,
    n_boot: int,
    seed: int,
) -> tuple[float, float] | None:
    table_rows = scored.distances[within]
    if table_rows.size == 0:
        return None
    try:
        return summary_ci(
            table_rows,
            scored.mated[within],
            scored.groups[within],
            distance,
            kind=kind,
            min_pairs=min_pairs,
            n_boot=n_boot,
            seed=seed,
            cluster=scored.clusters[within],
        )
    except ValueError:  # no measurable group, or Max/GeoMean undefined on every resample
        return None


def analyse(
    scored: ScoredPairs,
    thresholds_pct: Sequence[float],
    *,
    min_pairs: int = 100,
    n_boot: int = 1000,
    seed: int = 0,
    similarity: SimilarityModel | None = None,
) -> tuple[ThresholdResult, ...]:
    """Per-group FMR/FNMR with intervals at each Similarity threshold (in the given order).

    Groups with fewer than ``min_pairs`` scored pairs of a type are reported but too small for
    that type's summaries (see :func:`facegate.bias.rates.by_group`). ``similarity``: the
    distance -> Similarity mapping (default: the engine's).
    """
    similarity = similarity or default_similarity()
    ok = scored.scored
    within = ok & (scored.groups != CROSS_GROUP)
    cross = ok & (scored.groups == CROSS_GROUP)
    results = []
    for pct in thresholds_pct:
        distance = similarity.distance_for(pct)
        table = None
        if within.any():
            table = by_group(
                scored.distances[within],
                scored.mated[within],
                scored.groups[within],
                distance,
                min_pairs=min_pairs,
            )
        boot = {"min_pairs": min_pairs, "n_boot": n_boot, "seed": seed}
        cross_rates = None
        if cross.any():
            d = scored.distances[cross]
            m = scored.mated[cross]
            cross_rates = error_rates(d[m], d[~m], distance)
        results.append(
            ThresholdResult(
                similarity_pct=float(pct),
                distance=distance,
                table=table,
                fmr_ci=tuple(wilson_by_group(table, "fmr")) if table else (),
                fnmr_ci=tuple(wilson_by_group(table, "fnmr")) if table else (),
                fmr_max_geomean_ci=_max_geomean_ci(scored, within, distance, "fmr", **boot),
                fnmr_max_geomean_ci=_max_geomean_ci(scored, within, distance, "fnmr", **boot),
                cross=cross_rates,
            )
        )
    return tuple(results)


def _num(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def threshold_json(result: ThresholdResult) -> dict[str, Any]:
    """A :class:`ThresholdResult` as plain JSON types."""
    out: dict[str, Any] = {
        "similarity_pct": result.similarity_pct,
        "distance": round(result.distance, 6),
        "cross_group": None if result.cross is None else result.cross.as_dict(),
    }
    table = result.table
    if table is None:
        return out | {"overall": None, "groups": [], "fmr": None, "fnmr": None, "fdr": None}
    wilson = {(g.kind, g.group): g.interval for g in (*result.fmr_ci, *result.fnmr_ci)}
    overall = table.overall
    out["overall"] = overall.as_dict() | {
        "fmr_ci": wilson_interval(overall.false_matches, overall.nonmated_pairs),
        "fnmr_ci": wilson_interval(overall.false_non_matches, overall.mated_pairs),
    }
    out["groups"] = [
        row.rates.as_dict()
        | {
            "group": row.group,
            "fmr_ci": wilson.get(("fmr", row.group)),
            "fnmr_ci": wilson.get(("fnmr", row.group)),
            "fmr_measurable": row.fmr_measurable,
            "fnmr_measurable": row.fnmr_measurable,
        }
        for row in table.groups
    ]
    for kind, disp, ci in (
        ("fmr", table.fmr, result.fmr_max_geomean_ci),
        ("fnmr", table.fnmr, result.fnmr_max_geomean_ci),
    ):
        out[kind] = {
            "max_group": next(iter(disp.max_groups), None),
            "max": _num(disp.group_max),
            "min_group": next(iter(disp.min_groups), None),
            "min": _num(disp.group_min),
            "difference": _num(disp.difference),
            "ratio": _num(disp.ratio),
            "max_geomean": _num(disp.max_geomean),
            "max_geomean_ci": ci,
            "zero_groups": list(disp.zero_groups),
            "too_small": list(disp.too_small),
        }
    out["fdr"] = _num(table.fdr)
    out["min_pairs"] = table.min_pairs
    return out


DET_POINTS = 60
"""Distance thresholds per DET curve in the JSON report (enough for a smooth curve, small)."""

HIST_BIN = 0.02
HIST_MAX = 1.2
"""Histogram bins of distances in the JSON report: ``[0, 0.02), [0.02, 0.04), ...`` up to 1.2;
dlib distances of real faces fall in this range, and larger ones are counted apart."""


def _rounded(values: NDArray[np.float64], digits: int = 6) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in values.tolist()]


def curves_json(
    scored: ScoredPairs,
    *,
    points: int = DET_POINTS,
    similarity: SimilarityModel | None = None,
) -> dict[str, Any]:
    """DET curves and distance histograms per group (and ``overall``), as plain JSON types.

    Only within-group scored pairs count, as in the group table. ``det``: ``points`` distance
    thresholds evenly spanning the observed distances, their Similarity, and per group FMR and
    FNMR at each (``None`` where the group has no pairs of that type; see
    :func:`facegate.bias.thresholds.det_curve`). ``histograms``: counts of mated and non-mated
    distances in fixed bins of width :data:`HIST_BIN` from 0 to :data:`HIST_MAX`, and per group
    how many fell above the range (``*_above``) and below 0 (``*_below``: normalised scores).
    Size: about ``groups x (2 points + 4 x 60)`` numbers.
    """
    similarity = similarity or default_similarity()
    within = scored.scored & (scored.groups != CROSS_GROUP)
    d = scored.distances[within]
    mated = scored.mated[within]
    groups = scored.groups[within]
    names = sorted(set(groups.tolist()))
    if d.size:
        thresholds = np.linspace(float(d.min()), float(d.max()), max(points, 2))
    else:
        thresholds = np.zeros(0, dtype=np.float64)
    edges = np.round(np.arange(0.0, HIST_MAX + HIST_BIN / 2, HIST_BIN), 6)
    det_groups: dict[str, Any] = {}
    hist_groups: dict[str, Any] = {}
    for name in [*names, "overall"]:
        member = np.ones(d.size, dtype=np.bool_) if name == "overall" else groups == name
        m, n = d[member & mated], d[member & ~mated]
        curve = det_curve(m, n, thresholds)
        det_groups[name] = {
            "mated_pairs": int(m.size),
            "nonmated_pairs": int(n.size),
            "fmr": _rounded(curve.fmr),
            "fnmr": _rounded(curve.fnmr),
        }
        hist_groups[name] = {
            "mated": np.histogram(m, bins=edges)[0].astype(int).tolist(),
            "nonmated": np.histogram(n, bins=edges)[0].astype(int).tolist(),
            "mated_above": int((m > HIST_MAX).sum()),
            "nonmated_above": int((n > HIST_MAX).sum()),
            # a normalised score can be below 0 (near-identical images): counted, not dropped
            "mated_below": int((m < 0.0).sum()),
            "nonmated_below": int((n < 0.0).sum()),
        }
    return {
        "det": {
            "thresholds": _rounded(thresholds),
            "similarity_pct": _rounded(similarity.similarities_pct(thresholds), 4),
            "groups": det_groups,
        },
        "histograms": {"bin_edges": edges.tolist(), "groups": hist_groups},
    }


BALANCE_TEST = "Fisher's exact test (two-sided) between every two measurable groups"


def _check_json(check: Any, pct_of: dict[float, float]) -> dict[str, Any]:
    return {
        "similarity_pct": pct_of[check.threshold],
        "distance": round(check.threshold, 6),
        "balanced": check.balanced,
        "min_p": round(check.min_p, 8),
        "worst_pair": None if check.worst_pair is None else list(check.worst_pair),
    }


def sweep_json(
    scored: ScoredPairs,
    similarities_pct: Sequence[float],
    *,
    min_pairs: int = 100,
    significance: float = 0.05,
    bonferroni: bool = True,
    similarity: SimilarityModel | None = None,
) -> dict[str, Any]:
    """Error rates per group across Similarity thresholds, and the lowest balanced threshold.

    The NPL sweep (:func:`facegate.bias.thresholds.sweep` over within-group scored pairs): per
    Similarity (ascending in the output) and group, errors, pairs, rate and Wilson interval.
    ``balance``: per error type with at least one measurable group (``min_pairs`` pairs of the
    type), :func:`facegate.bias.thresholds.lowest_balanced_threshold` in Similarity terms:
    the lowest swept Similarity such that at it and every higher swept Similarity no two groups
    differ significantly (Fisher's exact test, level ``significance``, divided by the number
    of group pairs with ``bonferroni``). ``None`` for a type with no pairs (e.g. FNMR on an
    impostor-only data set).
    """
    similarity = similarity or default_similarity()
    pcts = sorted({float(p) for p in similarities_pct})
    pct_of = {similarity.distance_for(p): p for p in pcts}
    within = scored.scored & (scored.groups != CROSS_GROUP)
    result = sweep(
        scored.distances[within], scored.mated[within], scored.groups[within], list(pct_of)
    )
    points = []
    for row in range(result.thresholds.size - 1, -1, -1):  # loosest distance = lowest Similarity
        t = float(result.thresholds[row])
        groups = []
        for g, name in enumerate(result.groups):
            fm, n_non = int(result.false_matches[row, g]), int(result.nonmated_pairs[g])
            fnm, n_mat = int(result.false_non_matches[row, g]), int(result.mated_pairs[g])
            groups.append(
                {
                    "group": name,
                    "false_matches": fm,
                    "nonmated_pairs": n_non,
                    "fmr": fm / n_non if n_non else None,
                    "fmr_ci": wilson_interval(fm, n_non),
                    "fmr_measurable": n_non >= min_pairs,
                    "false_non_matches": fnm,
                    "mated_pairs": n_mat,
                    "fnmr": fnm / n_mat if n_mat else None,
                    "fnmr_ci": wilson_interval(fnm, n_mat),
                    "fnmr_measurable": n_mat >= min_pairs,
                }
            )
        points.append({"similarity_pct": pct_of[t], "distance": round(t, 6), "groups": groups})
    balance: dict[str, Any] = {}
    for kind in ("fmr", "fnmr"):
        _, totals = result.counts(kind)
        if not any(int(n) >= min_pairs for n in totals):
            balance[kind] = None
            continue
        res = lowest_balanced_threshold(
            result, significance=significance, min_pairs=min_pairs, kind=kind, bonferroni=bonferroni
        )
        comparisons = len(res.groups) * (len(res.groups) - 1) // 2
        balance[kind] = {
            "lowest_balanced_similarity_pct": None
            if res.threshold is None
            else pct_of[res.threshold],
            "lowest_balanced_distance": None if res.threshold is None else round(res.threshold, 6),
            "first_imbalanced_similarity_pct": None
            if res.first_imbalanced is None
            else pct_of[res.first_imbalanced],
            "comparisons": comparisons,
            "level": significance / comparisons if bonferroni and comparisons else significance,
            "groups": list(res.groups),
            "too_small": list(res.too_small),
            "checks": [_check_json(c, pct_of) for c in reversed(res.checks)],
        }
    return {
        "min_pairs": min_pairs,
        "test": {"name": BALANCE_TEST, "alpha": significance, "bonferroni": bonferroni},
        "points": points,
        "balance": balance,
    }
