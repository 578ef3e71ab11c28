"""Raw distance against the cohort-normalised score, side by side, on the same faces.

What is compared (``facegate bias normalisation``), three ways a normalised score can be better
or worse than the raw distance, each on data neither scorer was fitted on:

1. **Equal false non-match rate.** Each scorer's threshold is set where 5% of LFW View 2's mated
   pairs fail (the same FNMR for both); at that threshold, the impostor false match rate of each
   FairFace-val race x gender group, measured on every within-group pair of the calibration's
   *held-out* half of FairFace (the cohort was fitted on part of the other half: disjoint).
   Reported: per-group FMR with Wilson 95% intervals, the worst group, Max/GeoMean over the
   groups with a non-zero rate, and the worst group's raw/normalised ratio.
2. **LFW 10-fold accuracy** (View 2, threshold learnt on nine folds), raw and normalised.
3. **Lineup**: every Congress portrait searched against the held-out FairFace faces (nobody in
   Congress is in FairFace, so every candidate is false): probes with at least one candidate at
   Similarity 80, at 99, and at the size-aware threshold an obligation
   ``max_expected_false_candidates`` of ``bound`` sets for a gallery of that size, each with the
   scorer's own shipped calibration, and the LFW FNMR each threshold costs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.bias.calibration import Source, max_over_geomean
from facegate.bias.datasets import Pair
from facegate.bias.folds import cross_validate
from facegate.bias.stats import wilson_interval
from facegate.bias.verification import pair_distances
from facegate.engine.cohort import squared_distances
from facegate.engine.matching import Matcher

FNMR_TARGET = 0.05
LINEUP_SIMILARITIES = (80.0, 99.0)
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LfwPairs:
    """LFW View 2 as descriptors: ``vectors`` (NaN rows: no face) and pair indices."""

    vectors: FloatArray
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    mated: npt.NDArray[np.bool_]
    folds: npt.NDArray[np.int64]


def lfw_scores(matcher: Matcher, lfw: LfwPairs) -> FloatArray:
    """The scorer's score of every View 2 pair (NaN where an image has no face)."""
    if matcher.space.euclidean and matcher.weights is None:
        rows = zip(lfw.left, lfw.right, lfw.mated, strict=True)
        pairs = [Pair(int(a), int(b), bool(m)) for a, b, m in rows]
        return pair_distances(lfw.vectors, pairs, matcher.scorer)
    # another model's distance (cosine, a fused model's weighted sum): matcher.space's
    found = np.isfinite(lfw.vectors).all(axis=1)
    stats = np.full(len(lfw.vectors), np.nan)
    stats[found] = matcher.stats(lfw.vectors[found])
    d = matcher.space.paired(lfw.vectors[lfw.left], lfw.vectors[lfw.right], matcher.weights)
    out: FloatArray = matcher.scorer.scores(d, stats[lfw.left], stats[lfw.right])
    return out


def _pairwise(matcher: Matcher, a: FloatArray, b: FloatArray) -> FloatArray:
    """The matcher's model's distances between every row of ``a`` and of ``b``."""
    if matcher.space.euclidean and matcher.weights is None:
        out: FloatArray = np.sqrt(squared_distances(a, b))
        return out
    return matcher.space.pairwise(a, b, matcher.weights)


def _rate(errors: int, total: int) -> dict[str, Any]:
    ci = wilson_interval(errors, total)
    return {
        "errors": errors,
        "total": total,
        "rate": errors / total if total else None,
        "ci": list(ci) if ci else None,
    }


def _within_group_scores(matcher: Matcher, vectors: FloatArray) -> FloatArray:
    stats = matcher.stats(vectors)
    d = _pairwise(matcher, vectors, vectors)
    i, j = np.triu_indices(len(vectors), 1)
    return matcher.scorer.scores(d[i, j], stats[i], stats[j])


def equal_fnmr(
    matcher: Matcher,
    scores: FloatArray,
    lfw: LfwPairs,
    held: Source,
    grouping: str,
    fnmr: float = FNMR_TARGET,
) -> dict[str, Any]:
    """Section 1 for one matcher: threshold at ``fnmr`` on LFW (``scores``: :func:`lfw_scores`),
    per-group FMR on ``held``."""
    # no face (NaN): a miss whatever the threshold
    mated = np.where(np.isnan(scores), np.inf, scores)[lfw.mated]
    threshold = float(np.quantile(mated, 1.0 - fnmr, method="lower"))
    labels = np.asarray(held.groupings[grouping])
    groups: dict[str, dict[str, Any]] = {}
    for name in sorted(set(labels.tolist())):
        members = held.vectors[labels == name].astype(np.float64)
        within = _within_group_scores(matcher, members)
        groups[name] = _rate(int((within <= threshold).sum()), len(within))
    rates = [g["rate"] for g in groups.values() if g["rate"] is not None]
    worst = max(groups, key=lambda g: groups[g]["rate"] or 0.0)
    best = min(groups, key=lambda g: groups[g]["rate"] or 0.0)
    return {
        "threshold_score": threshold,
        "lfw_fnmr": float(np.mean(mated > threshold)),
        "groups": groups,
        "worst_group": worst,
        "best_group": best,
        "max_geomean": max_over_geomean(rates),
    }


def lfw_accuracy(scores: FloatArray, lfw: LfwPairs) -> dict[str, Any]:
    """Section 2 for one matcher's :func:`lfw_scores`: mean and per-fold accuracy of View 2's
    ten folds."""
    cv = cross_validate(scores, lfw.mated, lfw.folds)
    return {"mean": float(np.mean(cv.accuracies)), "folds": cv.accuracies}


def lineup(
    matcher: Matcher,
    probes: FloatArray,
    gallery: FloatArray,
    lfw_scores: FloatArray,
    lfw: LfwPairs,
    bound: float,
) -> dict[str, Any]:
    """Section 3 for one matcher: probes with a (false) candidate at each threshold."""
    sim = matcher.similarity
    size_aware = sim.similarity_for_fmr(bound / len(gallery))
    lfw_sims = np.where(
        np.isnan(lfw_scores), 0.0, sim.similarities_pct(np.nan_to_num(lfw_scores, nan=9.0))
    )
    g_stats = matcher.stats(gallery)
    best = np.zeros(len(probes))
    for start in range(0, len(probes), 256):
        p = probes[start : start + 256]
        d = _pairwise(matcher, p, gallery)
        s = matcher.scorer.scores(d, matcher.stats(p)[:, None], g_stats[None, :])
        best[start : start + 256] = sim.similarities_pct(s.min(axis=1))
    rows: list[dict[str, Any]] = []
    for label, threshold in [(f"{s:g}", s) for s in LINEUP_SIMILARITIES] + [
        (f"size-aware ({bound:g} expected)", size_aware)
    ]:
        if threshold is None:
            rows.append({"threshold": label, "similarity_pct": None})
            continue
        hit = int((best + 1e-9 >= threshold).sum())
        rows.append(
            {
                "threshold": label,
                "similarity_pct": float(threshold),
                "probes_with_false_candidate": _rate(hit, len(probes)),
                "lfw_fnmr": float(np.mean(lfw_sims[lfw.mated] + 1e-9 < threshold)),
            }
        )
    return {"gallery": len(gallery), "probes": len(probes), "rows": rows}


def compare(
    matchers: Mapping[str, Matcher],
    lfw: LfwPairs,
    held: Source,
    congress: FloatArray,
    *,
    grouping: str = "race x gender",
    bound: float = 0.01,
) -> dict[str, Any]:
    """The whole comparison document (``kind: score-comparison``), one entry per matcher."""
    out: dict[str, Any] = {
        "kind": "score-comparison",
        "fnmr_target": FNMR_TARGET,
        "grouping": grouping,
        "held_out_faces": len(held.vectors),
        "lfw_pairs": len(lfw.mated),
        "scorers": {},
    }
    for name, m in matchers.items():
        scores = lfw_scores(m, lfw)  # once per matcher, for all three sections
        out["scorers"][name] = {
            "similarity_version": m.version,
            "equal_fnmr": equal_fnmr(m, scores, lfw, held, grouping),
            "lfw_accuracy": lfw_accuracy(scores, lfw),
            "lineup": lineup(m, congress, held.vectors.astype(np.float64), scores, lfw, bound),
        }
    return out


def render(doc: Mapping[str, Any]) -> list[str]:
    """The comparison as markdown lines (tables side by side by scorer)."""
    names = list(doc["scorers"])
    cols = " | ".join(names)
    first = doc["scorers"][names[0]]["equal_fnmr"]["groups"]
    data = {"mated": "LFW", "impostors": "FairFace held-out half", "probes": "Congress portraits"}
    data |= doc.get("data") or {}
    lines = [
        f"## FMR per {doc['grouping']} group at {data['mated']} FNMR {doc['fnmr_target']:.0%} "
        f"({data['impostors']}, {doc['held_out_faces']} faces)",
        "",
        f"| group | {cols} |",
        "|---|" + "---|" * len(names),
    ]

    def cell(r: Mapping[str, Any]) -> str:
        ci = r["ci"]
        return f"{r['rate']:.3%} [{ci[0]:.3%}, {ci[1]:.3%}] ({r['errors']}/{r['total']})"

    for g in first:
        lines.append(
            f"| {g} | "
            + " | ".join(cell(doc["scorers"][n]["equal_fnmr"]["groups"][g]) for n in names)
            + " |"
        )
    for label, key in (("threshold (score)", "threshold_score"), ("LFW FNMR", "lfw_fnmr")):
        lines.append(
            f"| {label} | "
            + " | ".join(f"{doc['scorers'][n]['equal_fnmr'][key]:.4f}" for n in names)
            + " |"
        )
    lines.append(
        "| worst group | "
        + " | ".join(
            f"{doc['scorers'][n]['equal_fnmr']['worst_group']} "
            f"{doc['scorers'][n]['equal_fnmr']['groups'][doc['scorers'][n]['equal_fnmr']['worst_group']]['rate']:.3%}"
            for n in names
        )
        + " |"
    )
    lines.append(
        "| Max/GeoMean | "
        + " | ".join(_fmt(doc["scorers"][n]["equal_fnmr"]["max_geomean"]) for n in names)
        + " |"
    )
    lines.append(
        "| LFW 10-fold accuracy | "
        + " | ".join(f"{doc['scorers'][n]['lfw_accuracy']['mean']:.2%}" for n in names)
        + " |"
    )
    first_lineup = doc["scorers"][names[0]]["lineup"]
    lines += [
        "",
        f"## Lineup: {first_lineup['probes']} {data['probes']} against "
        f"{first_lineup['gallery']} {data['impostors']} faces (every candidate is false)",
        "",
        "| threshold | "
        + " | ".join(f"{n}: probes with a candidate; LFW FNMR" for n in names)
        + " |",
        "|---|" + "---|" * len(names),
    ]
    for row in lineup_rows(doc, lambda v: f"{v:.2%}", lambda v: f"{v:.1%}"):
        lines.append("| " + " | ".join(row) + " |")
    return lines


def lineup_rows(
    doc: Mapping[str, Any], rate: Callable[[float], str], fnmr: Callable[[float], str]
) -> list[list[str]]:
    """The lineup table of a comparison: per threshold, its label and one cell per scorer."""
    names = list(doc["scorers"])
    out = []
    for i, row in enumerate(doc["scorers"][names[0]]["lineup"]["rows"]):
        cells = [str(row["threshold"])]
        for n in names:
            r = doc["scorers"][n]["lineup"]["rows"][i]
            if r["similarity_pct"] is None:
                cells.append("uncalibrated")
                continue
            hit = r["probes_with_false_candidate"]
            cells.append(
                f"S {r['similarity_pct']:.4g}: {hit['errors']}/{hit['total']} "
                f"({rate(hit['rate'])}); FNMR {fnmr(r['lfw_fnmr'])}"
            )
        out.append(cells)
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
