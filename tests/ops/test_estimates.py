"""A search's own estimate of its false candidates (ops/estimates.py, ops/search.py): fitted on
the probe's nearest faces when the collection is large enough, the threshold raised where the
bound needs it (never lowered), nothing fitted for a small collection."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import numpy as np

from facegate.engine.matching import Matcher, raw_matcher
from facegate.engine.tail import MIN_TAIL_FACES
from facegate.ops.common import OpDeps
from facegate.ops.estimates import CALIBRATED, TAIL, FalseCandidates
from facegate.ops.search import scored_hits
from facegate.store.records import CollectionRecord, FaceRecord
from facegate.store.vectors import ExactIndex

C = CollectionRecord("c", "arn", "dlib-resnet-v1", "exact", 0.0, "acme", "col-c")


class IndexStore:
    """The store calls a search makes, over a real :class:`ExactIndex`."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.passes = 0
        self.index = ExactIndex()
        self.ids = [f"f{i}" for i in range(len(vectors))]
        self.index.add(self.ids, vectors.astype(np.float32))

    def indexed_count(self, collection: CollectionRecord) -> int:
        return len(self.index)

    def nearest(self, collection: CollectionRecord, query: Any, k: int, bound: float) -> Any:
        self.passes += 1
        return self.index.search(np.asarray(query, dtype=np.float32), k, bound)

    def indexed_vectors(self, collection: CollectionRecord, ids: list[str]) -> Any:
        return self.index.vectors(ids)

    def get_faces(self, collection: CollectionRecord, ids: list[str]) -> dict[str, FaceRecord]:
        return {
            f: FaceRecord(f, "c", "i", "s", None, 0, 0, 1, 1, 99.0, "dlib-resnet-v1", None, 0)
            for f in ids
        }


def _gallery(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A probe and ``n`` strangers at raw distances of about 0.55-0.9 (dlib's impostor range),
    a few of them close enough to pass Similarity 70."""
    rng = np.random.default_rng(seed)
    probe = rng.normal(scale=0.05, size=128)
    faces = probe + rng.normal(scale=0.047, size=(n, 128)) * rng.uniform(0.8, 1.2, size=(n, 1))
    return probe, faces


def _search(
    faces: np.ndarray,
    probe: np.ndarray,
    threshold: float,
    estimate: FalseCandidates | None,
    store: IndexStore | None = None,
) -> list[tuple[FaceRecord, float]]:
    matcher: Matcher = raw_matcher()
    deps = OpDeps(
        store=cast(Any, store or IndexStore(faces)),
        matcher=matcher,
        region="r",
        account_id="a",
        false_candidates=estimate,
        **cast(dict[str, Any], {"engine": None, "idempotency": None, "pages": None}),
    )
    return asyncio.run(scored_hits(deps, C, probe.astype(np.float32), threshold, 4096))


def test_the_tail_raises_a_threshold_the_bound_needs_and_reports() -> None:
    probe, faces = _gallery(3_000)
    plain = _search(faces, probe, 70.0, None)
    assert len(plain) > 5  # at 70 this probe draws many strangers
    estimate = FalseCandidates(bound=1.0)
    hits = _search(faces, probe, 70.0, estimate)
    assert estimate.method == TAIL
    assert estimate.faces == 3_000
    assert estimate.raised_to_pct is not None
    assert estimate.raised_to_pct > 70.0
    assert estimate.tail_expected is not None
    assert estimate.tail_expected <= 1.0 + 1e-6
    assert all(s + 1e-9 >= estimate.raised_to_pct for _, s in hits)
    assert len(hits) < len(plain)


def test_report_only_without_a_bound_and_never_lowered() -> None:
    probe, faces = _gallery(3_000)
    estimate = FalseCandidates(bound=None)
    hits = _search(faces, probe, 70.0, estimate)
    assert estimate.method == TAIL
    assert estimate.raised_to_pct is None
    assert estimate.tail_expected is not None
    assert estimate.tail_expected > 1.0
    assert len(hits) == len(_search(faces, probe, 70.0, None))
    # a generous bound at a high threshold: nothing to raise
    high = FalseCandidates(bound=1000.0)
    _search(faces, probe, 99.0, high)
    assert high.raised_to_pct is None


def test_a_small_collection_is_not_fitted() -> None:
    probe, faces = _gallery(MIN_TAIL_FACES - 1)
    estimate = FalseCandidates(bound=0.01)
    hits = _search(faces, probe, 70.0, estimate)
    assert estimate.method == CALIBRATED
    assert estimate.tail_expected is None
    assert estimate.raised_to_pct is None
    assert len(hits) == len(_search(faces, probe, 70.0, None))


def test_a_search_within_the_tail_reads_the_index_once_with_the_same_answer() -> None:
    probe, faces = _gallery(3_000)
    plain_store, tail_store = IndexStore(faces), IndexStore(faces)
    plain = _search(faces, probe, 99.5, None, plain_store)
    with_tail = _search(faces, probe, 99.5, FalseCandidates(bound=None), tail_store)
    assert plain  # a few faces within the bound, fewer than the tail's 101
    assert [(r.face_id, s) for r, s in with_tail] == [(r.face_id, s) for r, s in plain]
    assert plain_store.passes == 1
    assert tail_store.passes == 1  # the tail's nearest faces served the search
