"""Vector indexes: exact search is exact; HNSW finds the same neighbours; deletes stick."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.store.vectors import DIM, ExactIndex, HnswIndex, VectorIndex, make_index
from facegate.vectorspace import parse_space
from tests.store.real_vectors import fused_gallery, needs_faceres


def _data(n: int, seed: int = 7) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0, 0.1, size=(n, DIM)).astype(np.float32)
    return [f"f{i}" for i in range(n)], vectors


def _brute(vectors: np.ndarray, ids: list[str], q: np.ndarray, k: int) -> list[str]:
    d = np.linalg.norm(vectors.astype(np.float64) - q.astype(np.float64), axis=1)
    return [ids[i] for i in np.argsort(d, kind="stable")[:k]]


def test_exact_matches_brute_force() -> None:
    ids, vectors = _data(3000)
    index = ExactIndex()
    index.add(ids, vectors)
    q = vectors[17] + 0.01
    hits = index.search(q, 10, max_distance=10.0)
    assert [h.face_id for h in hits] == _brute(vectors, ids, q, 10)
    expected = np.linalg.norm(vectors[17].astype(np.float64) - q)
    assert hits[0].distance == pytest.approx(expected, abs=1e-4)


def test_max_distance_filters_and_k_caps() -> None:
    ids, vectors = _data(500)
    index = ExactIndex()
    index.add(ids, vectors)
    hits = index.search(vectors[3], 500, max_distance=1e-3)
    assert [h.face_id for h in hits] == ["f3"]
    assert len(index.search(vectors[3], 5, max_distance=100.0)) == 5
    assert index.search(vectors[3], 0, max_distance=100.0) == []


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_remove_and_readd(kind: str) -> None:
    ids, vectors = _data(2000)
    index: VectorIndex = make_index(kind)
    index.add(ids, vectors)
    index.add(ids[:10], vectors[:10])  # duplicates are ignored
    assert len(index) == 2000
    index.remove(["f5", "f6", "missing"])
    assert len(index) == 1998
    found = {h.face_id for h in index.search(vectors[5], 3, max_distance=100.0)}
    assert "f5" not in found
    index.remove(ids[:1500])  # enough tombstones to force an HNSW rebuild
    assert len(index) == 500
    hits = index.search(vectors[1700], 1, max_distance=100.0)
    assert [h.face_id for h in hits] == ["f1700"]


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_vectors_are_the_stored_ones_for_present_faces_only(kind: str) -> None:
    ids, vectors = _data(1500)
    index: VectorIndex = make_index(kind)
    index.add(ids, vectors)
    index.remove(["f3", *ids[1000:]])  # the exact index moves rows; HNSW rebuilds
    present, got = index.vectors(["f999", "f3", "f7", "f1200", "missing"])
    assert present == ["f999", "f7"]
    assert got.shape == (2, DIM)
    assert np.array_equal(got, vectors[[999, 7]])
    got[:] = 0  # a copy: the index is unchanged
    assert np.array_equal(index.vectors(["f7"])[1][0], vectors[7])
    none, empty = index.vectors(["missing"])
    assert none == []
    assert empty.shape == (0, DIM)


def test_hnsw_recall_against_exact() -> None:
    ids, vectors = _data(5000, seed=3)
    exact, approx = ExactIndex(), HnswIndex()
    exact.add(ids, vectors)
    approx.add(ids, vectors)
    rng = np.random.default_rng(11)
    found = total = 0
    for i in rng.choice(5000, 50, replace=False):
        q = vectors[i] + rng.normal(0, 0.02, DIM).astype(np.float32)
        truth = {h.face_id for h in exact.search(q, 10, 100.0)}
        found += len(truth & {h.face_id for h in approx.search(q, 10, 100.0)})
        total += len(truth)
    assert found / total >= 0.95


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown index kind"):
        make_index("lsh")


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_threshold_search_returns_every_hit_beyond_the_first_pass(kind: str) -> None:
    """HNSW starts with a short candidate list; a cluster of 300 hits must still come back whole."""
    rng = np.random.default_rng(21)
    centre = rng.normal(0, 0.1, DIM).astype(np.float32)
    near = centre + rng.normal(0, 0.005, (300, DIM)).astype(np.float32)
    far = rng.normal(0, 0.1, (2000, DIM)).astype(np.float32) + 1.0
    index: VectorIndex = make_index(kind)
    index.add(
        [f"n{i}" for i in range(300)] + [f"x{i}" for i in range(2000)], np.vstack([near, far])
    )
    index.remove(["n0", "n1"])
    hits = index.search(centre, 4096, max_distance=0.2)
    assert {h.face_id for h in hits} == {f"n{i}" for i in range(2, 300)}
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert len(index.search(centre, 100, max_distance=0.2)) == 100


def test_a_fused_space_keeps_each_part_and_searches_exactly() -> None:
    """Each part in its own block: vectors come back whole after growth and row moves, and a
    weighted search returns the exact float64 distances, nearest first, within the bound."""
    space = parse_space("euclidean:128+cosine:1024")
    rng = np.random.default_rng(3)
    vectors = np.hstack([rng.normal(0, 0.1, (2500, 128)), rng.normal(0, 1.0, (2500, 1024))]).astype(
        np.float32
    )
    ids = [f"f{i}" for i in range(len(vectors))]
    index = ExactIndex(space)
    for start in range(0, len(ids), 700):  # grows past the first capacity of 1,024 rows
        index.add(ids[start : start + 700], vectors[start : start + 700])
    gone = set(ids[::7])
    index.remove(sorted(gone))
    alive = [i for i, f in enumerate(ids) if f not in gone]
    present, stored = index.vectors([ids[i] for i in alive[::-1]])
    assert present == [ids[i] for i in alive[::-1]]
    assert np.array_equal(stored, vectors[alive[::-1]])
    weights = (0.444, 0.556)
    q = vectors[alive[5]] + np.float32(0.01)
    exact = space.distances(q, vectors[alive], weights)
    bound = float(np.sort(exact)[40])
    for k in (10, 4096):
        hits = index.search(q, k, bound, weights=weights)
        order = [alive[i] for i in np.argsort(exact, kind="stable") if exact[i] <= bound][:k]
        assert [h.face_id for h in hits] == [ids[i] for i in order]
        assert [h.distance for h in hits] == sorted(exact[exact <= bound])[:k]


def _real_fused_rows(n: int, seed: int) -> np.ndarray:
    """``n`` fused rows around real descriptors: each a real LFW face's vector plus Gaussian
    noise of 0.3 of each column's spread (so many distinct faces near real ones)."""
    real = fused_gallery().astype(np.float64)
    rng = np.random.default_rng(seed)
    rows = real[rng.integers(0, len(real), n)]
    rows += rng.normal(size=rows.shape) * 0.3 * real.std(axis=0)
    return rows.astype(np.float32)


@needs_faceres
def test_the_pruned_screen_answers_as_the_full_one_on_real_descriptors() -> None:
    """A fused index with a sketch (fitted at 700 rows, then grown to 3,500) and one without,
    fed the same adds and removes: every search answers the same ids in the same order with
    the same distances, the float64 distances of brute force: 101 nearest with no bound (the
    tail's read), thresholds, ties among duplicates at the k-th place, after deletions, rows
    added after the fit and a zero faceres part. The sketch's lower bounds hold for every row
    and rule out most rows of the 101-nearest read."""
    space = parse_space("euclidean:128+cosine:1024")
    weights = (0.4437, 0.5563)
    rows = _real_fused_rows(3500, seed=5)
    rows[100:130] = rows[99]  # 31 equal vectors: ties
    rows[200, 128:] = 0.0  # a zero faceres part: at cosine distance 1 from everything
    ids = [f"f{i}" for i in range(len(rows))]
    # every read through the bounds (full_read_share 1), and the default's fallback to a full
    # read when many rows survive
    pruned = ExactIndex(space, prune_dims=64, prune_min_rows=500, full_read_share=1.0)
    fallback = ExactIndex(space, prune_dims=64, prune_min_rows=500)
    full = ExactIndex(space, prune_dims=0)

    def check(queries: np.ndarray) -> None:
        present, stored = full.vectors(ids)
        for q in queries:
            exact = space.distances(q, stored, weights)
            for k, bound in (
                (101, np.inf),
                (5, np.inf),
                (4096, float(np.sort(exact)[60])),
                (10, float(np.sort(exact)[60])),
            ):
                got = pruned.search(q, k, bound, weights=weights)
                assert got == full.search(q, k, bound, weights=weights)
                assert got == fallback.search(q, k, bound, weights=weights)
                want = np.sort(exact[exact <= bound])[:k]
                assert [h.distance for h in got] == want.tolist()
                alive = dict(zip(present, exact, strict=True))
                assert all(alive[h.face_id] == h.distance for h in got)

    for start in range(0, 2800, 700):
        for index in (pruned, fallback, full):
            index.add(ids[start : start + 700], rows[start : start + 700])
    assert pruned.sketched
    assert pruned._fitted_rows == 700
    queries = np.vstack([_real_fused_rows(4, seed=6), rows[99:100], rows[200:201]])
    check(queries)
    gone = ids[3:2800:7] + ids[101:105]
    for index in (pruned, fallback, full):
        index.remove(gone)
        index.add(ids[2800:], rows[2800:])  # projected on the basis in force
    assert pruned._fitted_rows == 700
    check(queries)

    # the bounds: valid for every row, and most rows ruled out for the tail's read
    w = space.weights_or_ones(weights)
    for q in queries[:4]:
        lower, _ = pruned._bounds(q, w, len(pruned))
        _, stored = pruned.vectors(pruned._ids)
        exact = space.distances(q, stored, weights)
        assert np.all(lower <= exact + 1e-4)
        assert np.mean(lower > np.sort(exact)[100] + 2e-3) > 0.5
