"""Per-search false-candidate estimates against what happened, on faces with no mate.

For probes whose person is not in the collection, every candidate is false. Over many such
searches this compares the observed number of candidates at Similarity 80, 90 and 99 with what
was predicted per search by (a) the calibrated per-pair rate x N (what facegate promised
before), (b) the probe's own tail (``engine/tail.py``: a generalized Pareto fit of its 100
lowest normalised scores, label-free) and (c) the larger of the two (what facegate uses).
Then the smallest collection the tail fit holds on, what the default bound of one expected
false candidate does to a lineup of the Congress portraits against FairFace's held-out half,
and what it costs mated LFW searches.

    PYTHONPATH=src .venv/bin/python bench/tail_estimate.py [--cache-key KEY]

Collections: FairFace val (1,000 random faces; all 4,916), LFW + FairFace (10,000 random;
all 12,617). Populations (probes): the 879 Congress portraits, 600 random LFW faces (their own
person's faces removed from the collection), 150 faces of each FairFace race x gender group
(themselves removed). None of these numbers is fitted here: the tail model has no parameter
fitted on these data but ``k`` (100) and the minimum size, chosen from the tables it prints.
Writes bench/results/tail_estimate.json.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchlib import machine_info, machine_line, write_results
from facegate.bias.calibration import split_source
from facegate.engine.cohort import squared_distances
from facegate.engine.matching import Matcher, default_matcher
from facegate.engine.similarity import scale_similarity
from facegate.engine.tail import TAIL_SIZE, fit_tail
from sources import add_arguments, load_sources

LEVELS = (80.0, 90.0, 99.0)
SEED = 20


def score_matrix(matcher: Matcher, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Normalised scores (smaller: more alike), probes x gallery."""
    ps, gs = matcher.stats(probes), matcher.stats(gallery)
    d = np.sqrt(squared_distances(probes, gallery))
    return np.asarray(matcher.scorer.scores(d, ps[:, None], gs[None, :]))


def predict(
    matcher: Matcher, scores: np.ndarray, mask: np.ndarray | None, min_faces: int = 0
) -> dict[str, Any]:
    """Observed and predicted candidates (sums over probes) at each level."""
    sim = matcher.similarity
    limits = {s: sim.distance_for(s) for s in LEVELS}
    out: dict[str, Any] = {}
    obs = dict.fromkeys(LEVELS, 0)
    tail = dict.fromkeys(LEVELS, 0.0)
    both = dict.fromkeys(LEVELS, 0.0)
    calibrated = dict.fromkeys(LEVELS, 0.0)
    shapes = []
    for i, row in enumerate(scores):
        if mask is not None:
            row = row[~mask[i]]
        lowest = np.partition(row, TAIL_SIZE)[: TAIL_SIZE + 1]
        fit = fit_tail(lowest, len(row), min_faces=min_faces)
        assert fit is not None
        shapes.append(fit.shape)
        for s in LEVELS:
            obs[s] += int(np.sum(row <= limits[s]))
            t = fit.expected_at(limits[s])
            tail[s] += t
            promised = len(row) * float(sim.fmr_at(s) or 0.0)
            calibrated[s] += promised
            both[s] += max(t, promised)
    for s in LEVELS:
        out[f"{s:g}"] = {
            "observed": obs[s],
            "calibrated": calibrated[s],
            "tail": tail[s],
            "larger": both[s],
        }
    out["faces"] = scores.shape[1]
    out["probes"] = scores.shape[0]
    out["median_shape"] = float(np.median(shapes))
    return out


def ratio(pred: float, obs: int) -> str:
    return f"{pred / obs:.2f}x" if obs else ("0" if pred < 0.5 else "inf")


def accuracy(matcher: Matcher, sources: dict[str, Any], rng: np.random.Generator) -> list[Any]:
    lfw, ff, cg = (sources[k] for k in ("lfw", "fairface", "congress"))
    lfw_v, ff_v, cg_v = (s.vectors.astype(np.float64) for s in (lfw, ff, cg))
    both_v = np.vstack([lfw_v, ff_v])
    subjects = np.array(lfw.subjects)
    pick_ff = rng.choice(len(ff_v), 1000, replace=False)
    pick_lf = rng.choice(len(both_v), 10_000, replace=False)
    galleries = {
        "fairface-1k": (ff_v[pick_ff], None),
        "fairface": (ff_v, None),
        "lfw+fairface-10k": (both_v[pick_lf], pick_lf),
        "lfw+fairface": (both_v, np.arange(len(both_v))),
    }
    lfw_probes = rng.choice(len(lfw_v), 600, replace=False)
    groups = np.array(ff.groupings["race x gender"])
    rows = []
    for gname, (gal, rows_of) in galleries.items():
        pops: list[tuple[str, np.ndarray, np.ndarray | None]] = [("congress", cg_v, None)]
        if rows_of is not None:  # LFW and FairFace probes: their own faces left out
            in_lfw = rows_of < len(lfw_v)
            gal_subj = np.where(in_lfw, subjects[np.minimum(rows_of, len(lfw_v) - 1)], "")
            mask = subjects[lfw_probes][:, None] == gal_subj[None, :]
            pops.append(("lfw", lfw_v[lfw_probes], mask))
            for g in sorted(set(groups)):
                sel = np.flatnonzero(groups == g)[:150]
                m = (len(lfw_v) + sel)[:, None] == rows_of[None, :]
                pops.append((f"fairface {g}", ff_v[sel], m))
        for pname, probe_v, mask in pops:
            started = time.perf_counter()
            res = predict(matcher, score_matrix(matcher, probe_v, gal), mask)
            res.update(gallery=gname, population=pname, seconds=time.perf_counter() - started)
            rows.append(res)
            _print(res)
    return rows


def _print(res: dict[str, Any]) -> None:
    cells = []
    for s in LEVELS:
        r = res[f"{s:g}"]
        cells.append(
            f"{r['observed']:>7} {ratio(r['calibrated'], r['observed']):>7}"
            f" {ratio(r['tail'], r['observed']):>7} {ratio(r['larger'], r['observed']):>7}"
        )
    print(
        f"| {res['gallery']:<16} | {res['population']:<26} | {res['faces']:>6} | "
        + " | ".join(cells)
        + f" | {res['median_shape']:+.2f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args()
    sources, _ = load_sources(args.data, args.cache_key)
    matcher = default_matcher()
    rng = np.random.default_rng(SEED)
    print(f"matcher {matcher.version}; tail k={TAIL_SIZE}; probes have no mate in the collection")
    print("observed false candidates (sum over probes) and predicted/observed per method")
    head = " | ".join(f"S{s:g}: observed calibrated tail larger" for s in LEVELS)
    print(f"| collection | probes | N | {head} | shape |")
    rows = accuracy(matcher, sources, rng)
    print("\nsmallest collection: Congress probes against random FairFace subsets")
    small = []
    ff_v = sources["fairface"].vectors.astype(np.float64)
    cg_v = sources["congress"].vectors.astype(np.float64)
    for n in (250, 500, 1000, 2000):
        pick = rng.choice(len(ff_v), n, replace=False)
        res = predict(matcher, score_matrix(matcher, cg_v, ff_v[pick]), None)
        res.update(gallery=f"fairface-{n}", population="congress")
        small.append(res)
        _print(res)
    lineup = lineup_and_cost(matcher, sources)
    write_results(
        "tail_estimate",
        {"machine": machine_info(), "accuracy": rows, "smallest": small, "lineup": lineup},
    )
    print(machine_line(machine_info()))


def _threshold(matcher: Matcher, row: np.ndarray, bound: float, tail: bool) -> float:
    """The threshold a search of ``row``'s collection gets under ``bound``: calibrated, or the
    larger of calibrated and the probe's tail."""
    n = len(row)
    pct = scale_similarity(bound / n)
    if tail:
        lowest = np.partition(row, TAIL_SIZE)[: TAIL_SIZE + 1]
        fit = fit_tail(lowest, n)
        if fit is not None:
            limit = fit.limit_for(bound)
            pct = max(pct, float(matcher.similarity.similarity_pct(limit)))
    return pct


def lineup_and_cost(matcher: Matcher, sources: dict[str, Any]) -> dict[str, Any]:
    """Congress against FairFace's held-out half at the default bound (1), and at 0.01: the
    share of probes with a false candidate; and LFW searches with a mate in LFW + FairFace: the
    share whose best mate is below the threshold (FNIR)."""
    sim = matcher.similarity
    _, held = split_source(sources["fairface"])
    held_v = held.vectors.astype(np.float64)
    cg_v = sources["congress"].vectors.astype(np.float64)
    lfw, ff_v = sources["lfw"], sources["fairface"].vectors.astype(np.float64)
    lfw_v = lfw.vectors.astype(np.float64)
    both_v = np.vstack([lfw_v, ff_v])
    subjects = np.array(lfw.subjects)
    counts: dict[str, int] = {}
    for s in subjects:
        counts[s] = counts.get(s, 0) + 1
    mated = np.array([i for i, s in enumerate(subjects) if counts[s] > 1])
    probes = mated[:: max(1, len(mated) // 600)][:600]
    out: dict[str, Any] = {"congress_probes": len(cg_v), "held_out_faces": len(held_v)}
    lineup_scores = score_matrix(matcher, cg_v, held_v)
    mated_scores = score_matrix(matcher, lfw_v[probes], both_v)
    print("\nlineup (Congress vs FairFace held-out half) and mated LFW searches (LFW+FairFace)")
    print(
        "| bound | method | lineup: probes with a false candidate | median threshold | "
        "LFW FNIR | median threshold |"
    )
    print("|---|---|---|---|---|---|")
    for bound in (1.0, 0.01):
        for tail in (False, True):
            ths = np.array([_threshold(matcher, r, bound, tail) for r in lineup_scores])
            sims = sim.similarities_pct(lineup_scores)
            hit = np.mean((sims + 1e-9 >= ths[:, None]).any(axis=1))
            missed, mths = [], []
            for i, p in enumerate(probes):
                row = np.delete(mated_scores[i], p)  # the probe itself is not in the collection
                th = _threshold(matcher, row, bound, tail)
                own = [j for j in np.flatnonzero(subjects == subjects[p]) if j != p]
                best = float(sim.similarity_pct(float(mated_scores[i][own].min())))
                missed.append(best + 1e-9 < th)
                mths.append(th)
            name = "larger of calibrated and tail" if tail else "calibrated"
            key = f"bound={bound:g} {name}"
            out[key] = {
                "lineup_probes_with_false_candidate": float(hit),
                "lineup_median_threshold": float(np.median(ths)),
                "lfw_fnir": float(np.mean(missed)),
                "lfw_median_threshold": float(np.median(mths)),
                "lfw_probes": len(probes),
            }
            print(
                f"| {bound:g} | {name} | {hit:.1%} | {np.median(ths):.3f} | "
                f"{np.mean(missed):.1%} | {np.median(mths):.3f} |",
                flush=True,
            )
    return out


if __name__ == "__main__":
    main()
