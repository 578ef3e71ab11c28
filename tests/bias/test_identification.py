"""NIST 1:N measures from a lineup's search result: hand-made results with known answers, and a
real search (sample photos) by subject id."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.bias.identification import identification, render, threshold_for_fpir
from facegate.bias.lineup import SearchResult, search

NAN = np.nan


def _result(mate: list[float], rank: list[int], best_false: list[float]) -> SearchResult:
    n = len(mate)
    return SearchResult(
        (0.5,),
        np.zeros((n, 1), dtype=np.int64),
        np.array(mate, dtype=np.float64),
        (),
        np.array(best_false, dtype=np.float64),
        np.array(rank, dtype=np.int64),
    )


def test_threshold_for_fpir_lets_through_at_most_the_share() -> None:
    best = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    t = threshold_for_fpir(best, 0.2)
    assert t is not None
    assert 0.2 <= t < 0.3
    assert np.mean(best <= t) == pytest.approx(0.2)
    t0 = threshold_for_fpir(best, 0.01)
    assert t0 is not None
    assert np.mean(best <= t0) == 0.0
    assert threshold_for_fpir(np.array([]), 0.1) is None


def test_measures_per_group() -> None:
    # probes 0-3 "a" (all mated), 4-7 "b" (mated 4, 5; 6, 7 not)
    mate = [0.30, 0.45, 0.60, 0.35, 0.20, 0.70, NAN, NAN]
    rank = [1, 3, 1, 1, 2, 1, 0, 0]
    best_false = [0.55, 0.40, 0.80, 0.48, 0.10, 0.90, 0.65, 0.30]
    groups = np.array(["a"] * 4 + ["b"] * 4, dtype=np.str_)
    searched = np.ones(8, dtype=np.bool_)
    doc = identification(
        _result(mate, rank, best_false), searched, groups, [(80.0, 0.5)], lambda s: 100 - 100 * s,
        fpirs=(0.25,), rank=2, n_boot=50,
    )  # fmt: skip
    assert (doc["mated_searches"], doc["nonmated_searches"]) == (6, 8)
    at = doc["thresholds"][0]["groups"]
    # FNIR at 0.5: a: mate 0.60 missed -> 1/4; b: 0.70 missed -> 1/2
    assert at["a"]["fnir"]["count"] == 1
    assert at["a"]["fnir"]["searches"] == 4
    assert at["b"]["fnir"]["rate"] == 0.5
    # FPIR at 0.5 over every search with mates left out: a 0.40, 0.48; b 0.10, 0.30
    assert at["a"]["fpir"]["count"] == 2
    assert at["b"]["fpir"]["count"] == 2
    # a non-mate returned alongside a returned mate: probe 1 (0.45, 0.40), 3 (0.35, 0.48), 4
    assert at["a"]["nonmate_with_mate"]["count"] == 2
    assert at["b"]["nonmate_with_mate"]["count"] == 1
    # a returned non-mate outranks the mate: probes 1 (0.40 < 0.45) and 4 (0.10 < 0.20)
    assert at["a"]["nonmate_above_mate"]["count"] == 1
    assert at["b"]["nonmate_above_mate"]["count"] == 1
    assert at["all"]["nonmate_above_mate"]["searches"] == 6
    assert doc["ranks"]["a"]["rank_1"]["count"] == 3
    assert doc["ranks"]["a"]["rank_2"]["count"] == 3  # rank 3 is not within 2
    assert doc["ranks"]["b"]["rank_2"]["count"] == 2
    (f,) = doc["fnir_at_fpir"]
    # 2 of 8 non-mated searches may pass: the threshold sits just below 0.40
    assert f["score"] < 0.40
    assert f["score"] >= 0.30
    assert f["groups"]["all"]["fnir"]["count"] == 3  # mates 0.45, 0.60, 0.70 are above it
    lo, hi = f["fnir_bootstrap_ci"]
    assert 0.0 <= lo <= hi <= 1.0
    text = "\n".join(render(doc))
    assert "rank-2 rate" in text
    assert "FNIR at FPIR 0.25" in text


def test_a_real_search_ranks_the_mate() -> None:
    rng = np.random.default_rng(3)
    gallery = rng.normal(size=(50, 128)) / np.sqrt(128)
    probes = gallery[:5] + rng.normal(scale=0.02, size=(5, 128))
    result = search(probes, gallery, [0.3], declared={i: {i} for i in range(4)})
    assert result.mate_rank is not None
    assert result.best_false is not None
    assert list(result.mate_rank) == [1, 1, 1, 1, 0]
    assert result.best_false[4] < 0.3  # probe 4's own face is a "non-mate": not declared
