"""Is the calibration's promise kept on people it was not fitted on? Leave one population out.

The calibration (:mod:`facegate.bias.calibration`) fits one score -> Similarity mapping so that
Similarity S stands for a false match rate ``target_fmr(S)`` on the data it pools. This module
checks that promise where it was not fitted: for each *population* (a data set: LFW, FairFace,
the Congress portraits; or one race x gender group of FairFace), it refits the mapping with that
population removed, and measures the false match rate on the population's own impostor pairs
(every pair of two different people in it: within-group, NIST's convention) at Similarity 80,
90 and 99, with a Wilson 95% interval. The ratio measured / promised says how far the promise
is off for people like them; the worst ratio is what a promise should be judged by.

Three fits are checked the same way (:data:`FITS`):

* ``pooled``: the shipped method (:func:`~facegate.bias.calibration.fit`): each data set
  weighs equally in one pooled false match rate;
* ``worst``: each knot at the smallest distance any population of the fit allows
  (:func:`fit_worst`): every data set and every race x gender group keeps its own false match
  rate at or below the promise, so a population resembling the most crowded one is covered;
* ``worst_resolved``: the same, but a population constrains a knot only where it has the pairs
  to show that knot's rate (:data:`MIN_EXPECTED_ERRORS` false matches expected at it): at the
  highest Similarities a group of 15,000 pairs allows one or no false match, and the knot would
  follow its single nearest pair.

The worst fits cost false non-matches: :func:`fnmr_cost` measures LFW's mated pairs under each.

What is not refitted: the cohort of the normalised score (label-free aggregates of FairFace's
fit half, shipped with the model) is kept as shipped; only the mapping is refitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facegate.bias.calibration import (
    KNOT_SIMILARITIES,
    LOWEST_CALIBRATED,
    ZERO_DISTANCE,
    PairTail,
    Source,
    fit,
    pair_tail,
    target_fmr,
)
from facegate.bias.stats import wilson_interval
from facegate.engine.matching import PairScorer
from facegate.engine.similarity import PiecewiseSimilarity

LEVELS: tuple[float, ...] = (80.0, 90.0, 99.0)
"""The Similarities whose promise is checked."""

GROUPING = "race x gender"
"""FairFace's grouping whose groups are held out one by one."""

RATIO_LIMIT = 2.0
"""A promise is kept when measured / promised is at most this: a held-out population's false
match rate may be up to twice the promised one, no more (the target docs/calibration.md
states and judges each fit by)."""

MIN_EXPECTED_ERRORS = 5.0
"""``worst_resolved``: a population constrains the knot of Similarity S only when
``target_fmr(S) x its impostor pairs`` is at least this (Similarity 99: 50,000 pairs; 80: 500).
Five expected false matches put the relative half-width of a Poisson interval near 1: fewer
and the knot follows one or two pairs."""

FITS: tuple[str, ...] = ("pooled", "worst", "worst_resolved")
"""The fits checked, in the document's order (see the module docstring)."""


@dataclass(frozen=True)
class Population:
    """The impostor pairs of one population: their scores up to the tail's cap (ascending) and
    how many there are in all; ``group`` is its label in its data set's :data:`GROUPING` (None
    for a whole data set)."""

    name: str
    tail: NDArray[np.float64]
    impostors: int
    group: str | None = None

    def errors_at(self, limit: float) -> int:
        """How many of its impostor pairs score at most ``limit`` (a false match there)."""
        return int(np.searchsorted(self.tail, limit, side="right"))


def population_of(t: PairTail) -> Population:
    """A source's whole population: every impostor pair of its tail."""
    return Population(t.name, t.tail, t.impostors)


def group_populations(t: PairTail, grouping: str = GROUPING) -> list[Population]:
    """One population per group of ``t``'s ``grouping``: its within-group impostor pairs."""
    codes = t.groups[grouping]
    return [
        Population(f"{t.name} {name}", t.tail[codes.impostor_codes == i], int(total), name)
        for i, (name, total) in enumerate(zip(codes.names, codes.impostor_totals, strict=True))
    ]


def _allowed(p: Population, s: float) -> float:
    """The largest distance at which ``p``'s false match rate is at most ``target_fmr(s)``, by
    the shipped fit's convention: the largest observed impostor score that keeps it (stepped
    back below a tie), or just below the smallest when none does (too few pairs for ``s``)."""
    k = int(np.floor(target_fmr(s) * p.impostors * (1.0 + 1e-12)))  # errors allowed
    if len(p.tail) == 0:
        return ZERO_DISTANCE
    if k == 0:
        return float(np.nextafter(p.tail[0], 0.0))
    if k >= len(p.tail):  # the kept tail ends first: the cap bounds it
        return float(p.tail[-1])
    d = float(p.tail[k - 1])
    return float(np.nextafter(d, 0.0)) if p.tail[k] == d else d


def fit_worst(
    populations: Sequence[Population], version: str, min_expected: float = 0.0
) -> PiecewiseSimilarity:
    """The mapping whose every knot ``(d_S, S)`` is the smallest of the populations' own
    largest distances at which their false match rate is at most ``target_fmr(S)``: no
    population of the fit exceeds the promise. Each population's distance follows the shipped
    fit's convention (an observed impostor score), so where the populations are the pooled
    fit's data sets (and their groups) every knot is at or below the pooled fit's. Where two
    knots would fall on one distance (a small population allows no error at the highest
    Similarities), the higher Similarity's knot moves to the next smaller distance, never a
    larger one, so the promise still holds.

    ``min_expected``: a population constrains the knot of S only when ``target_fmr(S)`` times
    its impostor pairs is at least this (0: every population, every knot); a knot no population
    resolves is constrained by all of them.

    Raises ``ValueError`` when a population has no impostor pairs."""
    if not populations or any(p.impostors == 0 for p in populations):
        raise ValueError("every population needs impostor pairs")
    knots: list[tuple[float, float]] = []
    for s in sorted(KNOT_SIMILARITIES):  # lowest Similarity (largest distance) first
        resolving = [p for p in populations if target_fmr(s) * p.impostors >= min_expected]
        d = min(_allowed(p, s) for p in resolving or populations)
        if knots and d >= knots[-1][0]:
            d = float(np.nextafter(knots[-1][0], 0.0))
        if d <= 0.0:
            raise ValueError(f"no distance is left for Similarity {s:g}: more pairs")
        knots.append((d, float(s)))
    knots.reverse()
    if knots[-1][1] != LOWEST_CALIBRATED or knots[-1][0] >= ZERO_DISTANCE:
        raise ValueError(f"the knots must end at Similarity {LOWEST_CALIBRATED:g}")
    distances = [0.0] + [d for d, _ in knots] + [ZERO_DISTANCE]
    similarities = [100.0] + [s for _, s in knots] + [0.0]
    return PiecewiseSimilarity(version, tuple(distances), tuple(similarities))


def measure(population: Population, mapping: PiecewiseSimilarity, min_pairs: int) -> dict[str, Any]:
    """The population's false match rate at each of :data:`LEVELS` under ``mapping``, with
    its Wilson 95% interval and the ratio to the promise (None when it has fewer than
    ``min_pairs`` impostor pairs: too few to judge)."""
    out: dict[str, Any] = {"population": population.name, "pairs": population.impostors}
    for s in LEVELS:
        errors = population.errors_at(mapping.distance_for(s))
        rate = errors / population.impostors if population.impostors else None
        ci = wilson_interval(errors, population.impostors)
        enough = population.impostors >= min_pairs
        out[f"{s:g}"] = {
            "errors": errors,
            "fmr": rate,
            "ci95": list(ci) if ci else None,
            "promised": target_fmr(s),
            "ratio": rate / target_fmr(s) if rate is not None and enough else None,
        }
    return out


Tails = Callable[[Source], PairTail]


def fits(
    tails: Sequence[PairTail], groups: Sequence[Population], prefix: str
) -> dict[str, PiecewiseSimilarity]:
    """Each of :data:`FITS` on the data sets ``tails`` and, for the worst fits, the groups
    ``groups`` of those data sets too."""
    populations = [population_of(t) for t in tails] + list(groups)
    return {
        "pooled": fit(tails, f"{prefix}-pooled"),
        "worst": fit_worst(populations, f"{prefix}-worst"),
        "worst_resolved": fit_worst(
            populations, f"{prefix}-worst-resolved", min_expected=MIN_EXPECTED_ERRORS
        ),
    }


Split = tuple[Population, list[PairTail], list[Population]]
"""One population left out: (the held population, the pair tails fitted without it, the other
groups' populations of the fit)."""


def held_out_splits(
    sources: Mapping[str, Source], full: Mapping[str, PairTail], tails: Tails
) -> Iterator[Split]:
    """Each population left out in turn: first each whole data set (its groups with it), then
    each group of a data set with a :data:`GROUPING`, left out of its data set.

    ``sources``: the data sets by name; ``full``: each source's pair tail; ``tails``: the pair
    tail of a source (scored as the shipped matcher scores), called once per group left out.
    Raises ``ValueError`` for a group none of whose faces can be left out."""
    groups = {name: group_populations(t) for name, t in full.items() if GROUPING in t.groups}
    for name in full:  # a whole data set out
        others = [t for n, t in full.items() if n != name]
        extra = [p for n, ps in groups.items() if n != name for p in ps]
        yield population_of(full[name]), others, extra
    for name, populations in groups.items():  # one group out
        labels = sources[name].groupings[GROUPING]
        for held in populations:
            keep = np.array([label != held.group for label in labels])
            if keep.all():
                raise ValueError(f"{held.name}: no face of the group to leave out")
            without = tails(sources[name].take(keep))
            others = [t for n, t in full.items() if n != name] + [without]
            yield held, others, [p for p in populations if p is not held]


def leave_one_out(
    sources: Mapping[str, Source], full: Mapping[str, PairTail], tails: Tails, min_pairs: int
) -> dict[str, list[dict[str, Any]]]:
    """Both fits, each population left out in turn (:func:`held_out_splits`) and measured (see
    the module docstring)."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in FITS}
    for held, fit_tails, extra in held_out_splits(sources, full, tails):
        for name, mapping in fits(fit_tails, extra, "holdout").items():
            rows[name].append(measure(held, mapping, min_pairs))
    return rows


def worst_ratios(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """At each level, the highest measured / promised ratio over the rows that have one, and
    whose population it is."""
    out: dict[str, Any] = {}
    for s in LEVELS:
        judged = [(r[f"{s:g}"]["ratio"], r["population"]) for r in rows if r[f"{s:g}"]["ratio"]]
        if judged:
            ratio, name = max(judged)
            out[f"{s:g}"] = {"ratio": ratio, "population": name}
    return out


def fnmr_cost(
    mated: NDArray[np.float64], mappings: Mapping[str, PiecewiseSimilarity]
) -> dict[str, dict[str, float]]:
    """The share of ``mated`` pair scores below each level (a false non-match) per mapping."""
    return {
        name: {f"{s:g}": float(np.mean(mated > m.distance_for(s))) for s in LEVELS}
        for name, m in mappings.items()
    }


def holdout_document(
    sources: Mapping[str, Source],
    scorer: PairScorer,
    shipped: PiecewiseSimilarity,
    cap: float,
    min_pairs: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole check as JSON-ready data: each of :data:`FITS` with each population left out
    and measured on it, their worst ratios and whether each is within :data:`RATIO_LIMIT`, the
    shipped mapping measured on every population (Congress was never in its fit; the others
    partly were), and the FNMR on LFW's mated pairs of the shipped mapping and of each fit on
    all the data."""

    def tails(src: Source) -> PairTail:
        if progress is not None:
            progress(f"pairs of {src.name} ({len(src.vectors)} faces)")
        return pair_tail(src, cap, scorer=scorer)

    full = {name: tails(src) for name, src in sources.items()}
    rows = leave_one_out(sources, full, tails, min_pairs)
    groups = [p for t in full.values() if GROUPING in t.groups for p in group_populations(t)]
    populations = [population_of(t) for t in full.values()] + groups
    everything = {"shipped": shipped, **fits(list(full.values()), groups, "all")}
    mated = full["lfw"].mated if "lfw" in full else np.zeros(0)
    return {
        "levels": list(LEVELS),
        "ratio_limit": RATIO_LIMIT,
        "min_pairs": min_pairs,
        "cap": cap,
        "scorer": scorer.version,
        "shipped": shipped.version,
        "left_out": rows,
        "min_expected_errors": MIN_EXPECTED_ERRORS,
        "worst": {name: worst_ratios(r) for name, r in rows.items()},
        "kept": {
            name: {k: v["ratio"] <= RATIO_LIMIT for k, v in worst_ratios(r).items()}
            for name, r in rows.items()
        },
        "shipped_measured": [measure(p, shipped, min_pairs) for p in populations],
        "lfw_mated_pairs": len(mated),
        "lfw_fnmr": fnmr_cost(mated, everything) if len(mated) else {},
        "knots": {
            name: [[round(d, 6), s] for d, s in zip(m.distances, m.similarities, strict=True)]
            for name, m in everything.items()
        },
    }


def render(doc: Mapping[str, Any]) -> list[str]:
    """The document as text: per fit, each population left out, then the worst ratios."""
    lines = [
        f"scores: {doc['scorer']}; shipped mapping {doc['shipped']}",
        "FMR on the population left out of the fit, and measured / promised with its Wilson 95%"
        " interval",
    ]
    for name, rows in doc["left_out"].items():
        lines.append(f"\n{name} fit")
        lines.append(
            f"{'population':<38} {'pairs':>10}  " + "  ".join(f"S{s:g}".rjust(28) for s in LEVELS)
        )
        for r in rows:
            cells = []
            for s in LEVELS:
                c = r[f"{s:g}"]
                if c["ratio"] is None:
                    ratio = "-"
                else:
                    lo, hi = (x / c["promised"] for x in c["ci95"])
                    ratio = f"{c['ratio']:.2f}x [{lo:.2f}, {hi:.2f}]"
                cells.append(f"{c['fmr']:.2e} {ratio}".rjust(28))
            lines.append(f"{r['population']:<38} {r['pairs']:>10}  " + "  ".join(cells))
        worst = doc["worst"][name]
        lines.append(
            "worst: "
            + ", ".join(f"S{k} {v['ratio']:.2f}x ({v['population']})" for k, v in worst.items())
            + f"; within {doc['ratio_limit']:g}x: "
            + ", ".join(f"S{k} {'yes' if ok else 'no'}" for k, ok in doc["kept"][name].items())
        )
    lines.append(f"\nFNMR on LFW's {doc['lfw_mated_pairs']} mated pairs")
    for name, cells in doc["lfw_fnmr"].items():
        lines.append(f"  {name:<15} " + "  ".join(f"S{k} {v:.2%}" for k, v in cells.items()))
    return lines


SUMMARY_KIND = "facegate.holdout-summary/1"


def summary(doc: Mapping[str, Any], model_version: str, checked: str) -> dict[str, Any]:
    """What the transparency page publishes beside the shipped calibration
    (:func:`facegate.engine.similarity.holdout_summary`): for the shipped method (the pooled
    fit) the worst held-out ratio at each level, its population, pairs, Wilson 95% interval (in
    ratio units) and whether it is within the limit; and the worst-population fit's (resolved)
    worst ratios and LFW FNMR beside the pooled fit's. ``checked``: the date of the run.

    Raises ``ValueError`` for a document without the pooled rows."""
    rows = doc["left_out"].get("pooled")
    if not rows:
        raise ValueError("the document has no pooled fit rows")

    def worst(fit_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for level, w in worst_ratios(fit_rows).items():
            row = next(r for r in fit_rows if r["population"] == w["population"])
            cell = row[level]
            out[level] = {
                "ratio": cell["ratio"],
                "ci95_ratio": [x / cell["promised"] for x in cell["ci95"]],
                "population": row["population"],
                "pairs": row["pairs"],
                "within_limit": cell["ratio"] <= doc["ratio_limit"],
            }
        return out

    return {
        "kind": SUMMARY_KIND,
        "model_version": model_version,
        "similarity_version": doc["shipped"],
        "scorer": doc["scorer"],
        "checked": checked,
        "command": "facegate bias holdout",
        "populations": [r["population"] for r in rows],
        "min_pairs": doc["min_pairs"],
        "ratio_limit": doc["ratio_limit"],
        "worst_held_out": worst(rows),
        "worst_population_fit": {
            "worst_held_out": worst(doc["left_out"]["worst_resolved"]),
            "lfw_fnmr": doc["lfw_fnmr"].get("worst_resolved"),
            "pooled_lfw_fnmr": doc["lfw_fnmr"].get("pooled"),
            "lfw_mated_pairs": doc["lfw_mated_pairs"],
            "shipped": False,
        },
    }
