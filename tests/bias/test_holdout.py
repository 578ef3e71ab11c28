"""Leave one population out (bias/holdout.py): each population refitted without and measured,
the worst-population fit keeps every population of its fit within the promise, and a crowded
group left out of a pooled fit is caught. First on vectors drawn with a planted crowded group
(so the tests can fail), then on real faces: FairFace val's first 2,000 images and the 879
Congress portraits, described by the shipped model and scored by the shipped matcher (the bias
toolkit's descriptor cache; computed when absent)."""

from __future__ import annotations

import itertools
from typing import Any

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
from facegate.bias.holdout import (
    FITS,
    GROUPING,
    LEVELS,
    MIN_EXPECTED_ERRORS,
    Population,
    fit_worst,
    group_populations,
    holdout_document,
    leave_one_out,
    measure,
    render,
    summary,
    worst_ratios,
)
from facegate.engine.matching import RawScorer, default_matcher
from tests.conftest import SHARED_DATA

CAP = 1.6


def _cloud(rng: np.random.Generator, n: int, spread: float) -> np.ndarray:
    return rng.normal(scale=spread, size=(n, 128)).astype(np.float32)


def _sources() -> dict[str, Source]:
    """Three data sets of different people (500, 800, 500); "fairface" has two groups of 400,
    one crowded (its strangers lie closer together), as East Asian women do for dlib's
    descriptor."""
    rng = np.random.default_rng(20)
    crowded, loose = _cloud(rng, 400, 0.040), _cloud(rng, 400, 0.052)
    labels = ("crowded",) * 400 + ("loose",) * 400
    return {
        "lfw": Source("lfw", _cloud(rng, 500, 0.05), None, {}),
        # keyed apart from its name, as the toolkit's sources are ("fairface" -> "fairface_val")
        "ff": Source("fairface", np.vstack([crowded, loose]), None, {GROUPING: labels}),
        "congress": Source("congress", _cloud(rng, 500, 0.05), None, {}),
    }


def _tails(source: Source):  # type: ignore[no-untyped-def]
    return pair_tail(source, CAP, scorer=RawScorer())


def _stricter_in_order(rows: dict[str, list[dict[str, Any]]]) -> None:
    """worst <= worst_resolved <= pooled, in measured / promised, for every row and level."""
    for row in zip(*(rows[name] for name in ("worst", "worst_resolved", "pooled")), strict=True):
        for s in LEVELS:
            ratios = [r[f"{s:g}"]["ratio"] for r in row]
            if None not in ratios:
                assert ratios[0] <= ratios[1] + 1e-12
                assert ratios[1] <= ratios[2] + 1e-12


def _check_worst(populations: list[Population]) -> None:
    """fit_worst keeps every population within the promise at every knot; with
    ``min_expected`` it keeps those that resolve the knot, and is never stricter."""
    every = fit_worst(populations, "test-worst")
    resolved = fit_worst(populations, "test-resolved", min_expected=MIN_EXPECTED_ERRORS)
    for mapping in (every, resolved):
        assert all(b > a for a, b in itertools.pairwise(mapping.distances))
    for s in KNOT_SIMILARITIES:
        assert resolved.distance_for(s) >= every.distance_for(s)
        for p in populations:
            allowed = target_fmr(s) * p.impostors * (1 + 1e-12)
            assert p.errors_at(every.distance_for(s)) <= allowed
            if target_fmr(s) * p.impostors >= MIN_EXPECTED_ERRORS:
                assert p.errors_at(resolved.distance_for(s)) <= allowed


def test_fit_worst_keeps_every_population_within_the_promise() -> None:
    sources = _sources()
    full = [_tails(s) for s in sources.values()]
    populations = [Population(t.name, t.tail, t.impostors) for t in full]
    populations += group_populations(full[1])
    _check_worst(populations)


def test_leaving_the_crowded_group_out_of_a_pooled_fit_breaks_its_promise() -> None:
    sources = _sources()
    full = {name: _tails(s) for name, s in sources.items()}
    refitted: list[int] = []

    def tails(source: Source):  # type: ignore[no-untyped-def]
        refitted.append(len(source.vectors))
        return _tails(source)

    rows = leave_one_out(sources, full, tails, min_pairs=1000)
    assert refitted == [400, 400]  # each group really left out of its data set's refit
    names = [r["population"] for r in rows["pooled"]]
    assert names == ["lfw", "fairface", "congress", "fairface crowded", "fairface loose"]
    pooled = {r["population"]: r for r in rows["pooled"]}
    crowded = pooled["fairface crowded"]["80"]
    assert crowded["ratio"] > 2.0  # the pooled promise fails the crowded group
    lo, hi = crowded["ci95"]
    assert lo <= crowded["fmr"] <= hi
    _stricter_in_order(rows)
    summary = worst_ratios(rows["pooled"])
    assert summary["80"]["population"] == "fairface crowded"
    assert summary["80"]["ratio"] == pytest.approx(crowded["ratio"])


def test_the_document_and_its_text() -> None:
    sources = _sources()
    shipped = fit([_tails(s) for s in sources.values()], "test-shipped")
    doc = holdout_document(sources, RawScorer(), shipped, CAP, min_pairs=1000)
    assert list(doc["left_out"]) == list(FITS)
    crowded = doc["worst"]["pooled"]["80"]
    assert crowded["population"] == "fairface crowded"
    assert crowded["ratio"] > 2.0
    assert doc["kept"]["pooled"]["80"] is False
    assert len(doc["shipped_measured"]) == 5
    assert doc["lfw_fnmr"] == {}  # no mated pairs here
    text = "\n".join(render(doc))
    for name in FITS:
        assert f"\n{name} fit\n" in text
    assert f"S80 {crowded['ratio']:.2f}x (fairface crowded)" in text
    assert "within 2x: S80 no" in text
    published = summary(doc, "test-model", "2026-12-07")
    worst80 = published["worst_held_out"]["80"]
    assert worst80["population"] == "fairface crowded"
    assert worst80["ratio"] == pytest.approx(crowded["ratio"])
    assert worst80["within_limit"] is False
    lo, hi = worst80["ci95_ratio"]
    assert lo <= worst80["ratio"] <= hi
    assert published["similarity_version"] == "test-shipped"
    assert published["worst_population_fit"]["shipped"] is False
    with pytest.raises(ValueError, match="no pooled"):
        summary({**doc, "left_out": {}}, "test-model", "2026-12-07")


def test_too_few_pairs_are_not_judged() -> None:
    population = Population("small", np.array([0.1, 0.2]), 10)
    sources = _sources()
    mapping = fit_worst(
        [Population(t.name, t.tail, t.impostors) for t in map(_tails, sources.values())], "w"
    )
    row = measure(population, mapping, min_pairs=100)
    assert all(row[f"{s:g}"]["ratio"] is None for s in LEVELS)
    assert row["80"]["ci95"] is not None


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
    return sources, {name: _real_tails(src) for name, src in sources.items()}


def _real_tails(source: Source) -> PairTail:
    return pair_tail(source, DEFAULT_CAP, scorer=default_matcher().scorer)


def test_real_groups_are_their_own_within_group_pairs(
    real: tuple[dict[str, Source], dict[str, PairTail]],
) -> None:
    sources, full = real
    populations = group_populations(full["fairface"])
    assert len(populations) == 14
    labels = sources["fairface"].groupings[GROUPING]
    for p in populations:
        alone = _real_tails(sources["fairface"].take(np.array([x == p.group for x in labels])))
        assert p.impostors == alone.impostors > 0
        # the same pairs; their scores agree to rounding (matrix blocks differ)
        assert np.allclose(p.tail, alone.tail, rtol=0.0, atol=1e-9)


def test_real_leave_one_out(real: tuple[dict[str, Source], dict[str, PairTail]]) -> None:
    sources, full = real
    refitted: list[int] = []

    def tails(source: Source) -> PairTail:
        refitted.append(len(source.vectors))
        return _real_tails(source)

    rows = leave_one_out(sources, full, tails, min_pairs=1000)
    groups = group_populations(full["fairface"])
    faces = len(sources["fairface"].vectors)
    labels = sources["fairface"].groupings[GROUPING]
    assert refitted == [faces - labels.count(str(p.group)) for p in groups]
    assert [r["population"] for r in rows["pooled"]] == ["fairface_val", "congress_2015"] + [
        p.name for p in groups
    ]
    for name in FITS:
        for row in rows[name]:
            for s in LEVELS:
                cell = row[f"{s:g}"]
                lo, hi = cell["ci95"]
                assert lo <= cell["fmr"] <= hi
                assert (cell["ratio"] is None) == (row["pairs"] < 1000)
    _stricter_in_order(rows)
    summary = worst_ratios(rows["pooled"])
    for s in LEVELS:
        judged = [r[f"{s:g}"]["ratio"] for r in rows["pooled"] if r[f"{s:g}"]["ratio"]]
        assert summary[f"{s:g}"]["ratio"] == max(judged)


def test_real_worst_fit_keeps_every_population_within_the_promise(
    real: tuple[dict[str, Source], dict[str, PairTail]],
) -> None:
    _, full = real
    populations = [Population(t.name, t.tail, t.impostors) for t in full.values()]
    populations += group_populations(full["fairface"])
    _check_worst(populations)
