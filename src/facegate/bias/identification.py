"""NIST FRVT-style 1:N identification measures of a lineup (Grother et al., NIST IR 8271 and
8280, "Face Recognition Vendor Test Part 2: Identification" and "Part 3: Demographic Effects").

Inputs (:class:`facegate.bias.lineup.SearchResult`): every probe searched against the whole
gallery. A *mated search* is a probe with at least one mate in the gallery (declared with
``--declare-true``, or by subject id with ``--mates-by-subject``); its mate's best score and rank
are known. Every searched probe also gives a *non-mated search*: the same search with its mates
left out of the gallery (its best non-mate score), as NIST builds non-mated searches when every
probe has a mate. Scores are "lower is more alike"; a candidate is returned at threshold ``T``
when its score is at most ``T``. The candidate list is not cut (every gallery image above the
threshold is returned), so rank only matters for the threshold-free rates.

Measures, per probe group and overall:

* ``FPIR(T)``: non-mated searches returning at least one candidate at ``T``;
* ``FNIR(T)``: mated searches whose mate is not returned at ``T``;
* ``FNIR at FPIR f``: ``T`` set once, on all non-mated searches, so that FPIR is at most ``f``
  (NIST fixes one threshold for every group), then FNIR per group at that ``T``; with a
  bootstrap interval of the overall value (probes resampled, the threshold re-set each time);
* rank-1 and rank-``k`` identification rates (threshold-free): mated searches whose mate is
  ranked at most 1 (``k``) among all gallery images;
* ``non-mate with mate(T)``: mated searches where the mate *and* at least one non-mate are
  returned at ``T`` (someone else joins the true person in the list), and ``non-mate above
  mate(T)``: mated searches where a non-mate returned at ``T`` outranks the mate.

Rates carry 95% Wilson intervals (independent searches: one probe, one search). Groups with no
mated (non-mated) search show ``None`` for the rates that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facegate.bias.lineup import SearchResult
from facegate.bias.stats import wilson_interval

DEFAULT_FPIRS = (0.01, 0.1)
DEFAULT_RANK = 10


def _rate(hit: NDArray[np.bool_], among: NDArray[np.bool_]) -> dict[str, Any]:
    n, k = int(among.sum()), int((hit & among).sum())
    ci = wilson_interval(k, n)
    return {"count": k, "searches": n, "rate": k / n if n else None, "ci": list(ci) if ci else None}


def threshold_for_fpir(best_false: NDArray[np.float64], fpir: float) -> float | None:
    """The largest score threshold at which at most ``fpir`` of these non-mated searches return
    a candidate (None for no search). Ties at the boundary all fall on the safe side."""
    best = np.sort(best_false[np.isfinite(best_false)])
    if best.size == 0:
        return None
    allowed = int(np.floor(fpir * best.size + 1e-9))
    if allowed >= best.size:
        return float(best[-1])
    # every score below best[allowed] passes: at most `allowed` searches (fewer with ties)
    return float(np.nextafter(best[allowed], -np.inf))


def identification(
    result: SearchResult,
    searched: NDArray[np.bool_],
    groups: NDArray[np.str_],
    thresholds: Sequence[tuple[float, float]],
    similarity_of: Callable[[float], float],
    *,
    fpirs: Sequence[float] = DEFAULT_FPIRS,
    rank: int = DEFAULT_RANK,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The measures of the module docstring as a JSON-ready dict.

    ``searched``: probes with a face; ``groups``: each probe's group; ``thresholds``: the
    report's (Similarity %, score) pairs; ``similarity_of``: score -> Similarity, to print the
    thresholds FPIR sets.
    """
    if result.best_false is None or result.mate_rank is None:
        raise ValueError("the search result has no identification fields")
    best_false, mate_rank, mate = result.best_false, result.mate_rank, result.declared_distance
    mated = searched & (mate_rank > 0)
    nonmated = searched & np.isfinite(best_false)
    names = sorted(set(groups[searched].tolist()))
    scopes = [(n, groups == n) for n in names] + (
        [("all", np.ones_like(searched))] if names else []
    )

    def at(score: float) -> dict[str, dict[str, Any]]:
        found = mate <= score  # NaN: False
        false = best_false <= score
        out = {}
        for name, member in scopes:
            out[name] = {
                "fpir": _rate(false, nonmated & member),
                "fnir": _rate(~found, mated & member),
                "nonmate_with_mate": _rate(found & false, mated & member),
                "nonmate_above_mate": _rate(false & (best_false < mate), mated & member),
            }
        return out

    ranks = {
        name: {
            "rank_1": _rate(mate_rank == 1, mated & member),
            f"rank_{rank}": _rate((mate_rank >= 1) & (mate_rank <= rank), mated & member),
        }
        for name, member in scopes
    }
    at_fpir = []
    rng = np.random.default_rng(seed)
    idx_non, idx_mat = np.flatnonzero(nonmated), np.flatnonzero(mated)
    for f in fpirs:
        t = threshold_for_fpir(best_false[nonmated], f)
        entry: dict[str, Any] = {"fpir_target": f, "score": t, "similarity_pct": None}
        if t is not None:
            entry["similarity_pct"] = round(similarity_of(t), 4)
            entry["groups"] = {
                name: {"fnir": _rate(~(mate <= t), mated & member)} for name, member in scopes
            }
            entry["fnir_bootstrap_ci"] = _boot(best_false, mate, idx_non, idx_mat, f, n_boot, rng)
        at_fpir.append(entry)
    return {
        "mated_searches": int(mated.sum()),
        "nonmated_searches": int(nonmated.sum()),
        "rank_k": rank,
        "thresholds": [
            {"similarity_pct": pct, "score": score, "groups": at(score)}
            for pct, score in thresholds
        ],
        "ranks": ranks,
        "fnir_at_fpir": at_fpir,
    }


def _boot(
    best_false: NDArray[np.float64],
    mate: NDArray[np.float64],
    idx_non: NDArray[np.intp],
    idx_mat: NDArray[np.intp],
    fpir: float,
    n_boot: int,
    rng: np.random.Generator,
) -> list[float] | None:
    """95% percentile interval of overall FNIR at ``fpir``: non-mated and mated searches
    resampled apart, the threshold re-set on each resample."""
    if idx_non.size == 0 or idx_mat.size == 0 or n_boot < 1:
        return None
    values = []
    for _ in range(n_boot):
        t = threshold_for_fpir(best_false[rng.choice(idx_non, idx_non.size)], fpir)
        m = mate[rng.choice(idx_mat, idx_mat.size)]
        if t is not None:
            values.append(float(np.mean(~(m <= t))))
    if not values:
        return None
    low, high = np.quantile(values, [0.025, 0.975])
    return [float(low), float(high)]


def render(doc: dict[str, Any]) -> list[str]:
    """The identification section of the text report."""
    lines = [
        "",
        f"1:N identification (NIST FRVT measures): {doc['mated_searches']} mated searches, "
        f"{doc['nonmated_searches']} non-mated (each probe with its mates left out)",
    ]

    def cell(r: dict[str, Any]) -> str:
        if r["rate"] is None:
            return "-"
        lo, hi = r["ci"]
        return (
            f"{100 * r['rate']:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}] {r['count']}/{r['searches']}"
        )

    k = doc["rank_k"]
    lines.append(f"  {'group':<24} {'rank-1 rate':>34} {f'rank-{k} rate':>34}")
    for name, r in doc["ranks"].items():
        lines.append(f"  {name:<24} {cell(r['rank_1']):>34} {cell(r[f'rank_{k}']):>34}")
    for entry in doc["fnir_at_fpir"]:
        if entry["score"] is None:
            lines.append(f"  FNIR at FPIR {entry['fpir_target']:g}: no non-mated search")
            continue
        boot = entry.get("fnir_bootstrap_ci")
        extra = (
            ""
            if boot is None
            else f" (overall bootstrap [{100 * boot[0]:.2f}, {100 * boot[1]:.2f}])"
        )
        lines.append(
            f"  FNIR at FPIR {entry['fpir_target']:g} (score {entry['score']:.4f}, Similarity "
            f"{entry['similarity_pct']:g}){extra}:"
        )
        for name, r in entry["groups"].items():
            lines.append(f"    {name:<24} {cell(r['fnir']):>34}")
    for t in doc["thresholds"]:
        lines.append(f"  at Similarity {t['similarity_pct']:g}:")
        lines.append(
            f"    {'group':<24} {'FPIR':>34} {'FNIR':>34} {'non-mate with mate':>34}"
            f" {'non-mate above mate':>34}"
        )
        for name, g in t["groups"].items():
            lines.append(
                f"    {name:<24} {cell(g['fpir']):>34} {cell(g['fnir']):>34}"
                f" {cell(g['nonmate_with_mate']):>34} {cell(g['nonmate_above_mate']):>34}"
            )
    return lines
