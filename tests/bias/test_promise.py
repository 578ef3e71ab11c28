"""Fitting the promise curve and its nested leave-one-out check (bias/promise.py), the exact
interval beside Wilson's, and the shipped data file's form. First on vectors drawn with a
planted crowded group (so the tests can fail: the nominal promise breaks for it, the worst
rule does not), then on real faces: FairFace val's first 2,000 images and the 879 Congress
portraits, described by the shipped model and scored by the shipped matcher (the bias
toolkit's descriptor cache; computed when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.bias.calibration import (
    DEFAULT_CAP,
    KNOT_SIMILARITIES,
    PairTail,
    Source,
    fit,
    pair_tail,
    target_fmr,
)
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import Manifest, load_congress, load_fairface
from facegate.bias.descriptors import DescriptorCache, compute_descriptors
from facegate.bias.holdout import GROUPING, LEVELS, Population, group_populations
from facegate.bias.promise import (
    MIN_EXPECTED_ERRORS,
    RULES,
    fit_promise,
    measure,
    nested_check,
    promise_file,
    promise_run,
    render,
    size_aware_cost,
    worst_ratios,
)
from facegate.bias.stats import clopper_pearson_interval, wilson_interval
from facegate.engine.matching import RawScorer, default_matcher
from facegate.engine.promise import PromiseCurve
from facegate.engine.similarity import CalibratedSimilarity, scale_fmr
from tests.conftest import SHARED_DATA

CAP = 1.6


def _cloud(rng: np.random.Generator, n: int, spread: float) -> np.ndarray:
    return rng.normal(scale=spread, size=(n, 128)).astype(np.float32)


def _sources() -> dict[str, Source]:
    """Three data sets of different people; "ff" has two groups of 400, one crowded (its
    strangers lie closer together)."""
    rng = np.random.default_rng(20)
    crowded, loose = _cloud(rng, 400, 0.040), _cloud(rng, 400, 0.052)
    labels = ("crowded",) * 400 + ("loose",) * 400
    return {
        "lfw": Source("lfw", _cloud(rng, 500, 0.05), None, {}),
        "ff": Source("fairface", np.vstack([crowded, loose]), None, {GROUPING: labels}),
        "congress": Source("congress", _cloud(rng, 500, 0.05), None, {}),
    }


def _tails(source: Source) -> PairTail:
    return pair_tail(source, CAP, scorer=RawScorer())


def _populations(full: dict[str, PairTail]) -> list[Population]:
    out = [Population(t.name, t.tail, t.impostors) for t in full.values()]
    return out + [p for t in full.values() if GROUPING in t.groups for p in group_populations(t)]


def test_clopper_pearson_is_exact_and_wider_than_wilson_at_few_errors() -> None:
    assert clopper_pearson_interval(0, 10) == pytest.approx((0.0, 0.30850), abs=1e-5)
    low, high = clopper_pearson_interval(1, 10) or (0.0, 0.0)
    assert low == pytest.approx(0.0025286, abs=1e-6)
    assert high == pytest.approx(0.44502, abs=1e-5)
    assert clopper_pearson_interval(10, 10) == pytest.approx((0.025**0.1, 1.0))
    # 3 of 14,535: near the Poisson bound chi2(0.975, 8) / 2 / n = 8.7673 / 14,535 (binomial: a
    # hair lower)
    cp, w = clopper_pearson_interval(3, 14_535), wilson_interval(3, 14_535)
    assert cp is not None
    assert w is not None
    assert cp[1] == pytest.approx(8.76727 / 14_535, rel=1e-3)
    assert cp[1] < 8.76727 / 14_535
    assert cp[0] < w[0]  # Wilson's lower bound is too high at few errors
    assert clopper_pearson_interval(0, 0) is None
    with pytest.raises(ValueError, match="errors <= total"):
        clopper_pearson_interval(3, 2)


def test_the_worst_rule_keeps_every_population_of_its_fit() -> None:
    full = {name: _tails(s) for name, s in _sources().items()}
    populations = _populations(full)
    mapping = fit(list(full.values()), "m")
    curve, fitted = fit_promise(mapping, populations, "worst", CAP)
    assert curve.similarity_version == "m"
    assert list(curve.similarities) == sorted(KNOT_SIMILARITIES)
    for s, row in zip(curve.similarities, fitted, strict=True):
        d = mapping.distance_for(s)
        assert row["promised"] >= target_fmr(s)
        for p in populations:  # nobody of the fit is above the promise at a knot
            assert p.errors_at(d) / p.impostors <= curve.fmr_at(s) * (1 + 1e-12)
    crowded = next(r for r in fitted if r["similarity_pct"] == 80.0)
    assert crowded["population"] == "fairface crowded"
    assert crowded["promised"] > 2 * target_fmr(80.0)  # the pooled mapping's 80 is short


def test_rules_order_and_refusals() -> None:
    full = {name: _tails(s) for name, s in _sources().items()}
    populations = _populations(full)
    mapping = fit(list(full.values()), "m")
    curves = {rule: fit_promise(mapping, populations, rule, CAP)[0] for rule in RULES}
    for s in KNOT_SIMILARITIES:
        # the upper bound is the widest; the resolved rule ignores unresolved populations
        assert curves["worst_upper"].fmr_at(s) >= curves["worst_resolved"].fmr_at(s)
        assert curves["worst"].fmr_at(s) >= curves["worst_resolved"].fmr_at(s)
    with pytest.raises(ValueError, match="unknown promise rule"):
        fit_promise(mapping, populations, "best")
    with pytest.raises(ValueError, match="beyond the kept tail"):
        fit_promise(mapping, populations, "worst", cap=0.1)
    with pytest.raises(ValueError, match="impostor pairs"):
        fit_promise(mapping, [Population("empty", np.zeros(0), 0)], "worst")


def test_nested_check_catches_what_the_nominal_promise_misses() -> None:
    sources = _sources()
    full = {name: _tails(s) for name, s in sources.items()}
    refitted: list[int] = []

    def tails(source: Source) -> PairTail:
        refitted.append(len(source.vectors))
        return _tails(source)

    mapping = fit(list(full.values()), "shipped")
    rows = nested_check(sources, full, tails, mapping, ("worst",), min_pairs=1000)
    assert refitted == [400, 400]  # each group really left out of its data set's refit
    nested = {r["population"]: r for r in rows["nested"]["worst"]}
    assert list(nested) == ["lfw", "fairface", "congress", "fairface crowded", "fairface loose"]
    cell = nested["fairface crowded"]["80"]
    # the crowded group left out: the other populations set the promise, and it is short for
    # the crowded group (only a wider population could have covered it); the nominal rate
    # would be shorter still
    assert cell["ratio"] > 1.0
    assert cell["fmr"] / cell["nominal"] > cell["ratio"]
    lo, hi = cell["cp95_ratio"]
    assert lo <= cell["ratio"] <= hi
    worst = worst_ratios(rows["nested"]["worst"])
    assert worst["80"]["population"] == "fairface crowded"
    assert worst["80"]["within_limit"] == (cell["ratio"] <= 2.0)


def test_measure_marks_few_pairs_and_unjudged() -> None:
    tail = np.linspace(0.1, 0.7, 300)
    small = Population("small", tail, 2_000)
    mapping = fit([_tails(s) for s in _sources().values()], "m")
    curve = PromiseCurve("v", "m", (70.0, 99.9), (0.1, 1e-5))
    row = measure(small, mapping, curve, min_pairs=5_000)
    for s in LEVELS:
        cell = row[f"{s:g}"]
        assert cell["ratio"] is None  # fewer than min_pairs: not judged
        assert cell["few_pairs"] == (cell["promised"] * 2_000 < MIN_EXPECTED_ERRORS)


def test_size_aware_cost_is_the_promise_threshold() -> None:
    full = {name: _tails(s) for name, s in _sources().items()}
    mapping = fit(list(full.values()), "m")
    curve, _ = fit_promise(mapping, _populations(full), "worst", CAP)
    mated = np.linspace(0.0, 1.0, 101)
    rows = size_aware_cost(mated, mapping, curve, bounds=(1.0,), sizes=(1_000,))
    row = rows[0]
    assert row["promise"]["threshold"] == pytest.approx(curve.similarity_for_fmr(1e-3))
    assert row["promise"]["threshold"] >= row["nominal"]["threshold"]
    assert row["promise"]["fnmr"] >= row["nominal"]["fnmr"]
    limit = mapping.distance_for(row["promise"]["threshold"])
    assert row["promise"]["fnmr"] == pytest.approx(np.mean(mated > limit))


def test_the_run_and_its_shipped_file() -> None:
    sources = _sources()
    sources["lfw"] = Source(
        "lfw", sources["lfw"].vectors, tuple(str(i // 2) for i in range(500)), {}
    )
    mapping = fit([_tails(s) for s in sources.values()], "m")
    run = promise_run(sources, RawScorer(), mapping, CAP, 1000)
    assert set(run["left_out"]) == {"nested", "shipped_mapping"}
    assert run["lfw_mated_pairs"] == 250
    doc = promise_file(run, "worst", "model", "2026-12-07", "facegate bias promise --rule worst")
    curve = PromiseCurve.from_json(doc)  # the shipped form reads back, version checked
    assert curve.similarity_version == "m"
    assert doc["held_out"]["worst"] == run["worst"]["nested"]["worst"]
    assert [p["population"] for p in doc["provenance"]["populations"]][:3] == [
        "lfw",
        "fairface",
        "congress",
    ]
    text = "\n".join(render(run))
    assert "worst (nested)" in text
    assert "fairface crowded" in text
    with pytest.raises(ValueError, match="no curve for rule"):
        promise_file(run, "best", "model", "d", "c")


REAL_FAIRFACE = 2_000


@pytest.fixture(scope="module")
def real() -> tuple[dict[str, Source], dict[str, PairTail]]:
    """Real faces (see the module docstring): the sources and their pair tails."""
    fairface = load_fairface(SHARED_DATA / "fairface_val")
    manifests = {
        "fairface": Manifest(fairface.name, fairface.samples[:REAL_FAIRFACE]),
        "congress": load_congress(SHARED_DATA / "congress_2015"),
    }
    cache = DescriptorCache()
    sources = {
        name: calibration_source(m, compute_descriptors(m, cache=cache, progress=False))
        for name, m in manifests.items()
    }
    scorer = default_matcher().scorer
    return sources, {n: pair_tail(s, DEFAULT_CAP, scorer=scorer) for n, s in sources.items()}


def test_real_nested_check(real: tuple[dict[str, Source], dict[str, PairTail]]) -> None:
    """On real faces the promise fitted without a population is never below the nominal rate,
    and it covers the population left out better than the nominal rate does."""
    sources, full = real
    scorer = default_matcher().scorer
    similarity = default_matcher().similarity
    assert isinstance(similarity, CalibratedSimilarity)

    def tails(source: Source) -> PairTail:
        return pair_tail(source, DEFAULT_CAP, scorer=scorer)

    rows = nested_check(sources, full, tails, similarity.mapping, ("worst_resolved",), 1000)
    nested = rows["nested"]["worst_resolved"]
    assert [r["population"] for r in nested][:2] == ["fairface_val", "congress_2015"]
    assert len(nested) == 2 + 14
    over_nominal, over_promise = [], []
    for row in nested:
        for s in LEVELS:
            cell = row[f"{s:g}"]
            assert cell["promised"] >= scale_fmr(s) * (1 - 1e-9)
            lo, hi = cell["cp95_ratio"]
            assert lo <= cell["fmr"] / cell["promised"] <= hi
            if cell["ratio"] is not None:
                over_nominal.append(cell["fmr"] / cell["nominal"])
                over_promise.append(cell["ratio"])
    assert max(over_promise) < max(over_nominal)
