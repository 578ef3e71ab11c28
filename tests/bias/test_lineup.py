"""The lineup search on synthetic descriptors: planted matches, declared true matches, no face."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from numpy.typing import NDArray

from facegate.bias.datasets import DatasetError, Manifest, Sample
from facegate.bias.lineup import load_declared, match_rows, search, summarise
from facegate.engine.similarity import LOGISTIC_V0

D80, D99 = LOGISTIC_V0.distance_for(80), LOGISTIC_V0.distance_for(99)


def manifest(name: str, genders: list[str]) -> Manifest:
    samples = tuple(
        Sample(
            Path(f"/{name}/images/{name}{i}.jpg"),
            f"{name}{i}",
            MappingProxyType({"gender": g}),
            "t",
        )
        for i, g in enumerate(genders)
    )
    return Manifest(name, samples)


def vec(axis: int, shift: float = 0.0) -> NDArray[np.float32]:
    v = np.zeros(32, dtype=np.float32)
    v[axis] = 10.0
    v[31] = shift
    return v


def setup() -> tuple[Manifest, Manifest, NDArray[np.float32], NDArray[np.float32]]:
    """Probes: p0 (female) = gallery g2 exactly (a true match, declared); p1 (female) 0.5 from
    g3 (matches at 80 only); p2 (male) matches nothing; p3 (male) 0.3 from g4 (matches at 80 and
    99); p4 (female) has no face. Gallery g6 has no face."""
    probes = manifest("p", ["female", "female", "male", "male", "female"])
    gallery = manifest("g", ["x"] * 7)
    pv = np.stack([vec(2), vec(3, 0.5), vec(20), vec(4, 0.3), np.full(32, np.nan, np.float32)])
    gv = np.stack([vec(10), vec(11), vec(2), vec(3), vec(4), vec(12), np.full(32, np.nan)])
    return probes, gallery, pv, gv.astype(np.float32)


def test_planted_matches_counted_per_group_and_threshold() -> None:
    probes, gallery, pv, gv = setup()
    declared = {0: {2}}
    result = search(pv, gv, [D80, D99], declared=declared, chunk=2)
    ok = np.asarray(np.isfinite(pv).all(axis=1), dtype=np.bool_)
    at80 = {g.group: g for g in summarise(probes, ok, result, declared, ("gender",), 0)}
    at99 = {g.group: g for g in summarise(probes, ok, result, declared, ("gender",), 1)}
    f80, m80, all80 = at80["female"], at80["male"], at80["all"]
    assert (f80.probes, f80.no_face, f80.declared_present, f80.searched) == (3, 1, 1, 1)
    assert (f80.with_false_match, f80.false_match_share, f80.declared_found) == (1, 1.0, 1)
    assert (m80.searched, m80.with_false_match) == (2, 1)
    assert (all80.searched, all80.with_false_match, all80.no_face) == (3, 2, 1)
    assert at99["female"].with_false_match == 0
    assert at99["male"].with_false_match == 1
    assert at99["female"].declared_found == 1
    assert all80.interval is not None
    assert all80.interval[0] < 2 / 3 < all80.interval[1]
    rows80 = match_rows(probes, gallery, result, D80)
    assert [
        (Path(r["probe"]).name, Path(r["gallery"]).name, r["declared_true"]) for r in rows80
    ] == [
        ("p0.jpg", "g2.jpg", True),
        ("p3.jpg", "g4.jpg", False),
        ("p1.jpg", "g3.jpg", False),
    ]
    assert rows80[0]["similarity_pct"] > 99.9
    assert len(match_rows(probes, gallery, result, D99)) == 2


def test_undeclared_true_match_counts_as_false() -> None:
    probes, _, pv, gv = setup()
    result = search(pv, gv, [D80])
    ok = np.asarray(np.isfinite(pv).all(axis=1), dtype=np.bool_)
    female = summarise(probes, ok, result, {}, ("gender",), 0)[0]
    assert (female.group, female.searched, female.with_false_match) == ("female", 2, 2)


def test_chunking_and_keep_do_not_change_counts() -> None:
    rng = np.random.default_rng(0)
    pv = rng.normal(scale=0.3, size=(50, 16)).astype(np.float32)
    gv = rng.normal(scale=0.3, size=(70, 16)).astype(np.float32)
    limits = [0.6, 0.9]
    brute = np.linalg.norm(pv[:, None, :].astype(np.float64) - gv[None, :, :], axis=2)
    expected = np.stack([(brute <= t).sum(axis=1) for t in limits], axis=1)
    for chunk in (1, 7, 256):
        result = search(pv, gv, limits, chunk=chunk, keep=3)
        assert np.array_equal(result.false_counts, expected)
        per_probe = np.bincount([m.probe for m in result.matches], minlength=50)
        assert per_probe.max() <= 3


def test_load_declared_by_trailing_path(tmp_path: Path) -> None:
    probes, gallery, _, _ = setup()
    good = tmp_path / "declared.csv"
    good.write_text("probe,gallery\np0.jpg,images/g2.jpg\n/p/images/p1.jpg,g3.jpg\n")
    assert load_declared(good, probes, gallery) == {0: {2}, 1: {3}}
    bad = tmp_path / "bad.csv"
    bad.write_text("probe,gallery\np0.jpg,nobody.jpg\n")
    with pytest.raises(DatasetError, match=r"line 2: nobody\.jpg not found"):
        load_declared(bad, probes, gallery)
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(DatasetError, match="probe,gallery"):
        load_declared(header, probes, gallery)
    with pytest.raises(DatasetError, match="not found"):
        load_declared(tmp_path / "missing.csv", probes, gallery)
