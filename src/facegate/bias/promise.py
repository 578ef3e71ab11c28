"""Fit the promise curve and check it on populations it was not fitted on (nested leave-one-out).

The calibration's Similarity stands for the scale's nominal false match rate on the data it
pooled; a population left out of the fit can see several times that (:mod:`facegate.bias.
holdout`). The promise curve (:mod:`facegate.engine.promise`) keeps Similarity as it is and
widens the *rate* promised at each Similarity instead. :func:`fit_promise` sets the rate at
each knot S of the mapping (:data:`~facegate.bias.calibration.KNOT_SIMILARITIES`) by one of
:data:`RULES`, over *populations* (each data set, and each race x gender group of FairFace:
within-group pairs, NIST's convention), at the score ``d_S`` where the mapping puts S:

* ``worst``: the highest false match rate any population has at ``d_S``;
* ``worst_resolved``: the same over the populations that expect at least
  :data:`MIN_EXPECTED_ERRORS` false matches at the nominal rate there (Similarity 99: 50,000
  pairs), so a knot does not follow one pair of a small group;
* ``worst_upper``: the highest upper bound of a Clopper-Pearson 95% interval over the resolved
  populations (the most conservative).

Each is never below the nominal rate (a promise only widens) and never rises with Similarity.

:func:`nested_check` is how a rule is judged: for each population P in turn, the mapping is
refitted without P (the pooled fit, the shipped method), the promise curve is fitted on that
mapping without P, and P's own false match rate at Similarity 80, 90 and 99 is divided by the
rate promised there. Target: at most :data:`~facegate.bias.holdout.RATIO_LIMIT` (2x) for every
population with at least ``min_pairs`` pairs; Wilson and Clopper-Pearson 95% intervals and the
pair counts say how sure each ratio is, and a cell whose population expects fewer than
:data:`MIN_EXPECTED_ERRORS` false matches at the promised rate is marked ``few_pairs``. The
same is measured with the shipped mapping kept (only the promise refitted without P).

:func:`size_aware_cost` is what the promise costs: the size-aware threshold for a bound of
expected false candidates over N faces, nominal and promised, and LFW's mated pairs missed
there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facegate.bias.calibration import (
    KNOT_SIMILARITIES,
    PairTail,
    Source,
    fit,
    pair_tail,
    target_fmr,
)
from facegate.bias.holdout import (
    GROUPING,
    LEVELS,
    RATIO_LIMIT,
    Population,
    Tails,
    group_populations,
    held_out_splits,
    population_of,
)
from facegate.bias.stats import clopper_pearson_interval, wilson_interval
from facegate.engine.matching import PairScorer
from facegate.engine.promise import PROMISE_KIND, PromiseCurve, promise_version
from facegate.engine.similarity import PiecewiseSimilarity, scale_similarity

RULES: tuple[str, ...] = ("worst", "worst_resolved", "worst_upper")
"""The fitting rules :func:`fit_promise` knows (see the module docstring)."""

MIN_EXPECTED_ERRORS = 5.0
"""A population resolves the knot of Similarity S when its pairs x the nominal rate at S are at
least this (the relative half-width of a Poisson interval near 1 at 5)."""

SIZES: tuple[int, ...] = (1_000, 10_000, 25_000)
"""Collection sizes :func:`size_aware_cost` reports."""


def _knot_rate(p: Population, distance: float, rule: str) -> float:
    errors = p.errors_at(distance)
    if rule == "worst_upper":
        ci = clopper_pearson_interval(errors, p.impostors)
        return 0.0 if ci is None else ci[1]
    return errors / p.impostors


def fit_promise(
    mapping: PiecewiseSimilarity,
    populations: Sequence[Population],
    rule: str,
    cap: float | None = None,
) -> tuple[PromiseCurve, list[dict[str, Any]]]:
    """The promise curve of ``mapping`` by ``rule`` over ``populations``, and per knot what set
    it (``similarity_pct``, ``nominal``, ``promised``, ``population``: the population whose
    rate it is, or None where the nominal rate stands; its ``errors`` and ``pairs``).

    ``cap``: the largest score the populations' tails kept (None: they kept every pair).
    Raises ``ValueError`` for an unknown rule, a population without impostor pairs, or a knot
    whose score lies beyond ``cap`` (raise the pair tails' cap)."""
    if rule not in RULES:
        raise ValueError(f"unknown promise rule {rule!r}: one of {', '.join(RULES)}")
    if not populations or any(p.impostors == 0 for p in populations):
        raise ValueError("every population needs impostor pairs")
    knots: list[tuple[float, float]] = []
    fitted: list[dict[str, Any]] = []
    for s in sorted(KNOT_SIMILARITIES):
        d = mapping.distance_for(s)
        nominal = target_fmr(s)
        chosen = list(populations)
        if rule != "worst":
            resolving = [p for p in populations if nominal * p.impostors >= MIN_EXPECTED_ERRORS]
            chosen = resolving or chosen
        if cap is not None and d > cap:  # the pairs past the kept tail are not counted
            raise ValueError(f"Similarity {s:g} is at score {d:.4f}, beyond the kept tail ({cap})")
        rate, worst = max((_knot_rate(p, d, rule), i) for i, p in enumerate(chosen))
        promised = max(nominal, rate)
        if knots:  # never rising with Similarity (each rate already falls with d)
            promised = min(promised, knots[-1][1])
        knots.append((float(s), promised))
        setter = chosen[worst] if rate > nominal else None
        fitted.append(
            {
                "similarity_pct": float(s),
                "nominal": nominal,
                "promised": promised,
                "population": None if setter is None else setter.name,
                "errors": None if setter is None else setter.errors_at(d),
                "pairs": None if setter is None else setter.impostors,
            }
        )
    version = promise_version(mapping.version, knots)
    curve = PromiseCurve(
        version, mapping.version, tuple(s for s, _ in knots), tuple(f for _, f in knots)
    )
    return curve, fitted


def _interval_ratio(ci: tuple[float, float] | None, promised: float) -> list[float] | None:
    return None if ci is None else [ci[0] / promised, ci[1] / promised]


def measure(
    population: Population,
    mapping: PiecewiseSimilarity,
    curve: PromiseCurve,
    min_pairs: int,
) -> dict[str, Any]:
    """``population``'s false match rate at each of :data:`LEVELS` (at ``mapping``'s score for
    it) over ``curve``'s promised rate there, with Wilson and Clopper-Pearson 95% intervals in
    ratio units; ``ratio`` is None for fewer than ``min_pairs`` pairs (too few to judge), and
    ``few_pairs`` says the population expects fewer than :data:`MIN_EXPECTED_ERRORS` false
    matches at the promised rate (its ratio rests on a handful of pairs)."""
    out: dict[str, Any] = {"population": population.name, "pairs": population.impostors}
    for s in LEVELS:
        errors = population.errors_at(mapping.distance_for(s))
        n = population.impostors
        promised = curve.fmr_at(s)
        enough = n >= min_pairs
        out[f"{s:g}"] = {
            "errors": errors,
            "fmr": errors / n,
            "promised": promised,
            "nominal": target_fmr(s),
            "ratio": errors / n / promised if enough else None,
            "wilson95_ratio": _interval_ratio(wilson_interval(errors, n), promised),
            "cp95_ratio": _interval_ratio(clopper_pearson_interval(errors, n), promised),
            "few_pairs": promised * n < MIN_EXPECTED_ERRORS,
        }
    return out


def worst_ratios(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """At each level the highest judged ratio, its population, pairs and intervals, whether it
    is within :data:`RATIO_LIMIT`; and the populations with ``few_pairs`` there."""
    out: dict[str, Any] = {}
    for s in LEVELS:
        key = f"{s:g}"
        judged = [r for r in rows if r[key]["ratio"] is not None]
        if not judged:
            continue
        row = max(judged, key=lambda r: float(r[key]["ratio"]))
        cell = row[key]
        out[key] = {
            "ratio": cell["ratio"],
            "population": row["population"],
            "pairs": row["pairs"],
            "errors": cell["errors"],
            "wilson95_ratio": cell["wilson95_ratio"],
            "cp95_ratio": cell["cp95_ratio"],
            "within_limit": cell["ratio"] <= RATIO_LIMIT,
            "few_pairs": [r["population"] for r in rows if r[key]["few_pairs"]],
        }
    return out


def nested_check(
    sources: Mapping[str, Source],
    full: Mapping[str, PairTail],
    tails: Tails,
    shipped: PiecewiseSimilarity,
    rules: Sequence[str] = RULES,
    min_pairs: int = 1000,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Each population left out in turn (each data set of ``full``; each :data:`GROUPING`
    group of a source that has one, left out of its data set), measured against the promise
    fitted without it: ``{"nested" | "shipped_mapping": {rule: [row per population]}}``.
    ``nested``: the mapping refitted without the population too (pooled, the shipped method);
    ``shipped_mapping``: ``shipped`` kept. ``tails``: a source's pair tail, scored as the
    shipped matcher scores (called once per group left out)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {
        "nested": {r: [] for r in rules},
        "shipped_mapping": {r: [] for r in rules},
    }
    cap = min(t.cap for t in full.values())
    for held, fit_tails, extra in held_out_splits(sources, full, tails):
        refit = fit(fit_tails, "promise-nested")
        populations = [population_of(t) for t in fit_tails] + extra
        for rule in rules:
            for kind, mapping in (("nested", refit), ("shipped_mapping", shipped)):
                curve, _ = fit_promise(mapping, populations, rule, cap)
                out[kind][rule].append(measure(held, mapping, curve, min_pairs))
    return out


def size_aware_cost(
    mated: NDArray[np.float64],
    mapping: PiecewiseSimilarity,
    curve: PromiseCurve,
    bounds: Sequence[float] = (1.0,),
    sizes: Sequence[int] = SIZES,
) -> list[dict[str, Any]]:
    """For each bound and collection size: the size-aware threshold (the lowest Similarity
    whose per-pair rate is at most bound / N, as :func:`facegate.enforce.size_aware_threshold`)
    by the nominal scale and by ``curve``, and the share of ``mated`` pair scores (one
    person's pairs) that fall below each: a pairwise miss rate (FNMR), not a search's."""
    rows = []
    for bound in bounds:
        for n in sizes:
            row: dict[str, Any] = {"bound": bound, "faces": n}
            for name, pct in (
                ("nominal", scale_similarity(bound / n)),
                ("promise", curve.similarity_for_fmr(bound / n)),
            ):
                limit = mapping.distance_for(min(pct, 100.0 - 1e-9))
                row[name] = {"threshold": pct, "fnmr": float(np.mean(mated > limit))}
            rows.append(row)
    return rows


def promise_run(
    sources: Mapping[str, Source],
    scorer: PairScorer,
    shipped: PiecewiseSimilarity,
    cap: float,
    min_pairs: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole run as JSON-ready data: the nested check of every rule, each rule's worst
    ratios, each rule's curve fitted on every population for the shipped mapping (with what set
    each knot), and what each costs LFW's mated pairs at the size-aware threshold."""

    def tails(src: Source) -> PairTail:
        if progress is not None:
            progress(f"pairs of {src.name} ({len(src.vectors)} faces)")
        return pair_tail(src, cap, scorer=scorer)

    full = {name: tails(src) for name, src in sources.items()}
    rows = nested_check(sources, full, tails, shipped, RULES, min_pairs)
    groups = [p for t in full.values() if GROUPING in t.groups for p in group_populations(t)]
    populations = [population_of(t) for t in full.values()] + groups
    mated = full["lfw"].mated if "lfw" in full else np.zeros(0)
    curves: dict[str, Any] = {}
    for rule in RULES:
        curve, fitted = fit_promise(shipped, populations, rule, cap)
        curves[rule] = {
            "version": curve.version,
            "knots": curve.knots(),
            "fitted": fitted,
            "cost": size_aware_cost(mated, shipped, curve) if len(mated) else [],
        }
    return {
        "levels": list(LEVELS),
        "ratio_limit": RATIO_LIMIT,
        "min_pairs": min_pairs,
        "min_expected_errors": MIN_EXPECTED_ERRORS,
        "cap": cap,
        "scorer": scorer.version,
        "shipped": shipped.version,
        "populations": [{"population": p.name, "pairs": p.impostors} for p in populations],
        "lfw_mated_pairs": len(mated),
        "left_out": rows,
        "worst": {
            kind: {rule: worst_ratios(r) for rule, r in by_rule.items()}
            for kind, by_rule in rows.items()
        },
        "curves": curves,
    }


def promise_file(
    run: Mapping[str, Any], rule: str, model_version: str, checked: str, command: str
) -> dict[str, Any]:
    """The shipped data file (``<calibration stem>.promise.json``) of ``rule`` from a run of
    :func:`promise_run`: the curve (``version``, ``similarity_version``, ``knots``), what set
    each knot, the nested check's worst ratios (both variants) with their intervals and the
    populations with too few pairs, and provenance (command, date, scorer, populations and
    their pairs, LFW's cost). Raises ``ValueError`` for a rule the run did not fit."""
    if rule not in run["curves"]:
        raise ValueError(f"the run has no curve for rule {rule!r}")
    curve = run["curves"][rule]
    return {
        "kind": PROMISE_KIND,
        "model_version": model_version,
        "similarity_version": run["shipped"],
        "version": curve["version"],
        "rule": rule,
        "knots": curve["knots"],
        "fitted": curve["fitted"],
        "held_out": {
            "method": "nested leave-one-population-out: the mapping (pooled) and this promise "
            "refitted without each population, its FMR over the promised rate",
            "levels": run["levels"],
            "ratio_limit": run["ratio_limit"],
            "min_pairs": run["min_pairs"],
            "worst": run["worst"]["nested"][rule],
            "worst_shipped_mapping": run["worst"]["shipped_mapping"][rule],
        },
        "cost": {"lfw_mated_pairs": run["lfw_mated_pairs"], "size_aware": curve["cost"]},
        "provenance": {
            "command": command,
            "checked": checked,
            "scorer": run["scorer"],
            "min_expected_errors": run["min_expected_errors"],
            "cap": run["cap"],
            "populations": run["populations"],
        },
    }


def render(run: Mapping[str, Any]) -> list[str]:
    """The run as text: per rule, each population's nested ratio at each level, then the worst
    ratios of both variants, the curve at the levels and LFW's cost."""
    lines = [f"scores: {run['scorer']}; shipped mapping {run['shipped']}"]
    for rule, rows in run["left_out"]["nested"].items():
        lines.append(f"\n{rule}: FMR of the population left out / promised without it [CP 95%]")
        lines.append(
            f"{'population':<38} {'pairs':>10}  " + "  ".join(f"S{s:g}".rjust(26) for s in LEVELS)
        )
        for r in rows:
            cells = []
            for s in LEVELS:
                c = r[f"{s:g}"]
                lo, hi = c["cp95_ratio"]
                ratio = "-" if c["ratio"] is None else f"{c['ratio']:.2f}x"
                mark = "*" if c["few_pairs"] else " "
                cells.append(f"{ratio} [{lo:.2f}, {hi:.2f}]{mark}".rjust(26))
            lines.append(f"{r['population']:<38} {r['pairs']:>10}  " + "  ".join(cells))
        for kind in ("nested", "shipped_mapping"):
            worst = run["worst"][kind][rule]
            lines.append(
                f"worst ({kind}): "
                + ", ".join(
                    f"S{k} {v['ratio']:.2f}x ({v['population']}, {v['pairs']:,} pairs)"
                    f"{'' if v['within_limit'] else ' OVER'}"
                    for k, v in worst.items()
                )
            )
        curve = run["curves"][rule]
        promised = PromiseCurve(
            curve["version"],
            run["shipped"],
            tuple(k[0] for k in curve["knots"]),
            tuple(k[1] for k in curve["knots"]),
        )
        lines.append(
            "promised (all populations): "
            + ", ".join(f"S{s:g} {promised.fmr_at(s):.2e}" for s in (80.0, 90.0, 99.0, 99.9))
        )
        for c in curve["cost"]:
            lines.append(
                f"  bound {c['bound']:g}, {c['faces']:>6,} faces: nominal "
                f"S{c['nominal']['threshold']:.3f} FNMR {c['nominal']['fnmr']:.1%} -> promise "
                f"S{c['promise']['threshold']:.3f} FNMR {c['promise']['fnmr']:.1%}"
            )
    lines.append("* fewer than 5 false matches expected at the promised rate (few pairs)")
    return lines
