"""NIST 1:N measures from a lineup's search result: hand-made results with known answers, the
search's mate ranks on planted vectors, and the measures of a real LFW lineup (the engine's
descriptors) against a direct count over its distance matrix."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from facegate.bias.identification import identification, render, threshold_for_fpir
from facegate.bias.lineup import SearchResult, search
from facegate.engine.core import FaceEngine

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


LFW = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "lfw"


def _lfw_lineup(per_gender: int, mates_each: int, distractors: int) -> tuple[
    list[tuple[Path, str, str]], list[tuple[Path, str, str]]
]:  # fmt: skip
    """Probes (each person's first image) and a gallery (their next ``mates_each`` images and
    ``distractors`` people with one image), the first people of LFW's gender.csv by name."""
    people: dict[str, list[tuple[str, str]]] = {}
    with (LFW / "gender.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            people.setdefault(row["identity"], []).append((row["image"], row["gender"]))
    probes: list[tuple[Path, str, str]] = []
    gallery: list[tuple[Path, str, str]] = []
    taken = {"M": 0, "F": 0}
    singles = 0
    for person, images in sorted(people.items()):
        images.sort()
        gender = images[0][1]
        if len(images) > mates_each and taken.get(gender, per_gender) < per_gender:
            taken[gender] += 1
            probes.append((LFW / "images" / images[0][0], person, gender))
            gallery += [(LFW / "images" / i, person, g) for i, g in images[1 : 1 + mates_each]]
        elif len(images) == 1 and singles < distractors:
            singles += 1
            gallery.append((LFW / "images" / images[0][0], person, gender))
    return probes, gallery


def test_measures_on_real_lfw_descriptors_match_a_direct_count(engine: FaceEngine) -> None:
    """Six women and six men of LFW searched against two more images of each and ten other
    people: every measure equals a direct count over the distance matrix of the engine's real
    descriptors, and the FPIR thresholds let through at most their share."""
    probes, gallery = _lfw_lineup(per_gender=6, mates_each=2, distractors=10)

    def describe(rows: list[tuple[Path, str, str]]) -> NDArray[np.float64]:
        out = []
        for path, _, _ in rows:
            faces = engine.analyze(path.read_bytes(), max_faces=1).faces
            out.append(faces[0].descriptor if faces else np.full(128, np.nan))
        return np.asarray(out, dtype=np.float64)

    pv, gv = describe(probes), describe(gallery)
    assert np.isfinite(pv).all()
    assert np.isfinite(gv).all()
    mates = {
        p: {g for g, row in enumerate(gallery) if row[1] == probe[1]}
        for p, probe in enumerate(probes)
    }
    thresholds = [0.45, 0.55, 0.6]
    result = search(pv, gv, thresholds, declared=mates)
    groups = np.array([g for _, _, g in probes], dtype=np.str_)
    doc = identification(
        result, np.ones(len(probes), dtype=np.bool_), groups,
        [(float(i), t) for i, t in enumerate(thresholds)], lambda s: s,
        fpirs=(0.1, 0.25), rank=2, n_boot=100,
    )  # fmt: skip

    dist = np.linalg.norm(pv[:, None, :] - gv[None, :, :], axis=2)
    mate = np.array([dist[p, sorted(m)].min() for p, m in mates.items()])
    other = np.array(
        [np.delete(dist[p], sorted(m)).min() for p, m in mates.items()], dtype=np.float64
    )
    rank = np.array(
        [1 + int((np.delete(dist[p], sorted(m)) < mate[p]).sum()) for p, m in mates.items()]
    )
    assert doc["mated_searches"] == doc["nonmated_searches"] == len(probes) == 12
    for name, member in (("F", groups == "F"), ("M", groups == "M"), ("all", groups != "")):
        n = int(member.sum())
        assert doc["ranks"][name]["rank_1"]["count"] == int((rank[member] == 1).sum())
        assert doc["ranks"][name]["rank_2"]["count"] == int((rank[member] <= 2).sum())
        for t, at in zip(thresholds, doc["thresholds"], strict=True):
            g = at["groups"][name]
            assert g["fpir"]["count"] == int((other[member] <= t).sum())
            assert g["fnir"]["count"] == int((mate[member] > t).sum())
            both = (mate[member] <= t) & (other[member] <= t)
            assert g["nonmate_with_mate"]["count"] == int(both.sum())
            above = (other[member] <= t) & (other[member] < mate[member])
            assert g["nonmate_above_mate"]["count"] == int(above.sum())
            assert g["fpir"]["searches"] == g["fnir"]["searches"] == n
            lo, hi = g["fnir"]["ci"]
            assert lo <= g["fnir"]["rate"] <= hi
    assert doc["ranks"]["all"]["rank_1"]["count"] > 0  # dlib finds some of these people
    # the search computes distances another way (|p|^2 + |g|^2 - 2 p.g): equal to rounding
    assert result.best_false is not None
    assert np.allclose(result.best_false, other, rtol=0, atol=1e-9)
    assert np.allclose(result.declared_distance, mate, rtol=0, atol=1e-9)
    searched_other, searched_mate = result.best_false, result.declared_distance
    for entry in doc["fnir_at_fpir"]:
        t, f = entry["score"], entry["fpir_target"]
        assert (searched_other <= t).mean() <= f
        # the largest such threshold: the next non-mate score above it breaks the bound
        above_t = searched_other[searched_other > t]
        assert above_t.size == 0 or (searched_other <= above_t.min()).mean() > f
        assert entry["groups"]["all"]["fnir"]["count"] == int((searched_mate > t).sum())
