"""The promise curve: checked where it was not fitted, what it costs, and what it does to a lineup.

    PYTHONPATH=src .venv/bin/python bench/promise.py [--cache-key KEY] [--rule RULE]

1. ``facegate bias promise``'s run (facegate/bias/promise.py): for each population (LFW,
   FairFace val, the 879 Congress portraits, FairFace's 14 race x gender groups) the mapping and
   the promise curve are refitted without it, and its false match rate at Similarity 80, 90 and
   99 is divided by the rate promised there (target <= 2x; Wilson and Clopper-Pearson 95%
   intervals, pair counts), for each fitting rule.
2. The cost: the size-aware threshold for a bound of 1 expected false candidate over 1,000,
   10,000 and 25,000 faces, nominal scale and promise side by side, and LFW's mated pairs
   missed there (pairwise FNMR; every pair of two images of one person).
3. The lineup under the base pack's bound, swept (1, 0.5, 0.2, 0.1, 0.05, 0.01), as a search
   runs it: the threshold is the larger of the size-aware one (nominal, or the promise) and the
   probe's own tail (engine/tail.py). Galleries: FairFace's held-out half (the calibration's
   split). Probes with no mate there, so every candidate is false: the 879 Congress portraits
   (the lineup the bound is chosen on), and two it is not chosen on: one face of each LFW
   person, and FairFace's fit half (FairFace has no identities: a person photographed twice
   would count as a false candidate). Beside each, LFW searches with a mate (600 probes against
   LFW + FairFace, 12,616 faces, their own image left out): the share whose mate falls below
   the threshold (FNIR).

About 4 min on 2 cores with the descriptor cache. Prints the tables, writes
bench/results/promise.json.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from benchlib import machine_info, machine_line, write_results
from facegate.bias.calibration import DEFAULT_CAP, Source, split_source
from facegate.bias.promise import RULES, promise_run, render
from facegate.engine.cohort import squared_distances
from facegate.engine.matching import Matcher, default_matcher
from facegate.engine.promise import PromiseCurve
from facegate.engine.similarity import CalibratedSimilarity, scale_similarity
from facegate.engine.tail import TAIL_SIZE, fit_tail
from sources import add_arguments, load_sources
from tail_estimate import score_matrix

BOUNDS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.01)
LFW_PROBES = 600


def _tail_pct(matcher: Matcher, row: np.ndarray, bound: float) -> float:
    """The threshold the probe's own tail sets for ``bound`` (0 when not fitted)."""
    fit = fit_tail(np.partition(row, TAIL_SIZE)[: TAIL_SIZE + 1], len(row))
    if fit is None:
        return 0.0
    return float(matcher.similarity.similarity_pct(fit.limit_for(bound)))


def _thresholds(
    matcher: Matcher, scores: np.ndarray, bound: float, rate: Callable[[float], float]
) -> np.ndarray:
    """Per probe (row): the larger of the size-aware threshold (``rate``: the lowest Similarity
    of a per-pair rate) and the probe's tail, as a search with the bound runs it."""
    n = scores.shape[1]
    size_aware = min(100.0, rate(bound / n))
    return np.array([max(size_aware, _tail_pct(matcher, r, bound)) for r in scores])


def _false_share(matcher: Matcher, scores: np.ndarray, thresholds: np.ndarray) -> float:
    sims = matcher.similarity.similarities_pct(scores)
    return float(np.mean((sims + 1e-9 >= thresholds[:, None]).any(axis=1)))


NEAR_IDENTICAL = 0.1
"""A raw dlib distance below this is the same photograph (or nearly), not a look-alike."""


def _closest_false(
    matcher: Matcher, scores: np.ndarray, raw: np.ndarray, thresholds: np.ndarray
) -> dict[str, Any]:
    """The probes with a false candidate: how many, the raw distance of each one's closest
    false candidate (quartiles), and how many of those are near-identical images."""
    sims = matcher.similarity.similarities_pct(scores)
    hit = sims + 1e-9 >= thresholds[:, None]
    rows = np.flatnonzero(hit.any(axis=1))
    closest = np.array([raw[i][hit[i]].min() for i in rows])
    return {
        "probes": len(rows),
        "raw_distance_quartiles": np.quantile(closest, [0.25, 0.5, 0.75]).tolist()
        if len(rows)
        else [],
        "near_identical": int(np.sum(closest < NEAR_IDENTICAL)),
    }


def lineups(matcher: Matcher, sources: dict[str, Source], curve: PromiseCurve) -> dict[str, Any]:
    """The sweep of section 3 (see the module docstring)."""
    fit_half, held = split_source(sources["fairface"])
    held_v = held.vectors.astype(np.float64)
    lfw = sources["lfw"]
    lfw_v = lfw.vectors.astype(np.float64)
    assert lfw.subjects is not None
    subjects = np.array(lfw.subjects)
    _, first = np.unique(subjects, return_index=True)
    probe_sets = {
        "congress": sources["congress"].vectors.astype(np.float64),
        "lfw_identities": lfw_v[np.sort(first)],
        "fairface_fit_half": fit_half.vectors.astype(np.float64),
    }
    scores = {name: score_matrix(matcher, v, held_v) for name, v in probe_sets.items()}
    raw = {name: np.sqrt(squared_distances(v, held_v)) for name, v in probe_sets.items()}
    both_v = np.vstack([lfw_v, sources["fairface"].vectors.astype(np.float64)])
    counts = {s: int(np.sum(subjects == s)) for s in set(lfw.subjects)}
    mated = np.array([i for i, s in enumerate(subjects) if counts[s] > 1])
    probes = mated[:: max(1, len(mated) // LFW_PROBES)][:LFW_PROBES]
    mated_scores = score_matrix(matcher, lfw_v[probes], both_v)
    rows_mated = [np.delete(mated_scores[i], p) for i, p in enumerate(probes)]
    best = np.array(
        [
            matcher.similarity.similarity_pct(
                float(
                    mated_scores[i][
                        [j for j in np.flatnonzero(subjects == subjects[p]) if j != p]
                    ].min()
                )
            )
            for i, p in enumerate(probes)
        ]
    )
    rates: dict[str, Callable[[float], float]] = {
        "nominal": scale_similarity,
        "promise": curve.similarity_for_fmr,
    }
    out: dict[str, Any] = {
        "gallery_faces": len(held_v),
        "probes": {name: len(v) for name, v in probe_sets.items()},
        "lfw_search_probes": len(probes),
        "lfw_search_faces": len(both_v) - 1,
        "rows": [],
    }
    print(
        "\n| bound | promise | Congress: probes with a false candidate | LFW identities | "
        "FairFace fit half | median threshold (Congress) | LFW searches: mate missed |"
    )
    print("|---|---|---|---|---|---|---|")
    for bound in BOUNDS:
        for name, rate in rates.items():
            row: dict[str, Any] = {"bound": bound, "promise": name}
            for lineup, sc in scores.items():
                ths = _thresholds(matcher, sc, bound, rate)
                row[lineup] = {
                    "probes_with_false_candidate": _false_share(matcher, sc, ths),
                    "median_threshold": float(np.median(ths)),
                    "closest_false": _closest_false(matcher, sc, raw[lineup], ths),
                }
            n = len(both_v) - 1
            size_aware = min(100.0, rate(bound / n))
            ths = np.array([max(size_aware, _tail_pct(matcher, r, bound)) for r in rows_mated])
            row["lfw_fnir"] = float(np.mean(best + 1e-9 < ths))
            row["lfw_median_threshold"] = float(np.median(ths))
            out["rows"].append(row)
            print(
                f"| {bound:g} | {name} | {row['congress']['probes_with_false_candidate']:.2%} | "
                f"{row['lfw_identities']['probes_with_false_candidate']:.2%} | "
                f"{row['fairface_fit_half']['probes_with_false_candidate']:.2%} | "
                f"{row['congress']['median_threshold']:.3f} | {row['lfw_fnir']:.1%} |",
                flush=True,
            )
    print("\nprobes with a false candidate at bound 1 (promise): the closest one's raw distance")
    default = next(r for r in out["rows"] if r["bound"] == 1.0 and r["promise"] == "promise")
    for lineup in scores:
        c = default[lineup]["closest_false"]
        print(
            f"  {lineup}: {c['probes']} probes; quartiles "
            + ", ".join(f"{x:.3f}" for x in c["raw_distance_quartiles"])
            + f"; near-identical (< {NEAR_IDENTICAL:g}): {c['near_identical']}"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    parser.add_argument("--rule", choices=RULES, default="worst_resolved", help="lineup's curve")
    args = parser.parse_args()
    sources, _ = load_sources(args.data, args.cache_key)
    matcher = default_matcher()
    similarity = matcher.similarity
    assert isinstance(similarity, CalibratedSimilarity)
    run = promise_run(
        sources,
        matcher.scorer,
        similarity.mapping,
        DEFAULT_CAP,
        1000,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    for line in render(run):
        print(line)
    print(f"\nLFW's {run['lfw_mated_pairs']} mated pairs missed at the bound of 1 (pairwise FNMR)")
    print(
        "| faces | nominal: threshold | FNMR | "
        + " | ".join(f"{r}: threshold | FNMR" for r in RULES)
        + " |"
    )
    print("|---|---|---|" + "---|---|" * len(RULES))
    for i, c in enumerate(run["curves"][RULES[0]]["cost"]):
        cells = [f"{c['nominal']['threshold']:.3f}", f"{c['nominal']['fnmr']:.1%}"]
        for rule in RULES:
            p = run["curves"][rule]["cost"][i]["promise"]
            cells += [f"{p['threshold']:.3f}", f"{p['fnmr']:.1%}"]
        print(f"| {c['faces']:,} | " + " | ".join(cells) + " |")
    chosen = run["curves"][args.rule]
    curve = PromiseCurve(
        chosen["version"],
        run["shipped"],
        tuple(k[0] for k in chosen["knots"]),
        tuple(k[1] for k in chosen["knots"]),
    )
    print(
        f"\nlineups under the bound, rule {args.rule} ({curve.version}) against the nominal scale"
    )
    lineup = lineups(matcher, sources, curve)
    info = machine_info()
    write_results("promise", {"machine": info, "run": run, "rule": args.rule, "lineup": lineup})
    print(machine_line(info))


if __name__ == "__main__":
    main()
