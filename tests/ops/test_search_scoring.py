"""1:N search with a normalised score: thresholds, order, and the widened search that keeps
``MaxFaces`` exact when normalisation reorders faces the index ranked by raw distance."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import numpy as np
import pytest

from facegate.engine.cohort import CohortNormaliser
from facegate.engine.matching import Matcher, raw_matcher
from facegate.engine.similarity import CalibratedSimilarity
from facegate.ops.common import OpDeps
from facegate.ops.search import scored_hits
from facegate.store.records import CollectionRecord, FaceRecord
from facegate.store.vectors import Hit

DIM = 128


class BruteForceStore:
    """The three store calls a search makes, by brute force, counting the index searches and
    the faces read from the database."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.searches: list[tuple[int, float]] = []
        self.records_read: list[str] = []

    def nearest(
        self, collection: CollectionRecord, query: np.ndarray, k: int, max_distance: float
    ) -> list[Hit]:
        self.searches.append((k, max_distance))
        hits = sorted(
            (float(np.linalg.norm(v - query)), face_id) for face_id, v in self.vectors.items()
        )
        return [Hit(f, d) for d, f in hits if d <= max_distance][:k]

    def indexed_vectors(
        self, collection: CollectionRecord, face_ids: list[str]
    ) -> tuple[list[str], np.ndarray]:
        present = [f for f in face_ids if f in self.vectors]
        return present, np.array([self.vectors[f] for f in present]).reshape(-1, DIM)

    def get_faces(self, collection: CollectionRecord, face_ids: list[str]) -> dict[str, FaceRecord]:
        self.records_read.extend(face_ids)
        return {f: _record(f) for f in face_ids if f in self.vectors}


C = CollectionRecord("c", "arn", "dlib-resnet-v1", "exact", 0.0, "acme", "col-c")


def _record(face_id: str) -> FaceRecord:
    return FaceRecord(face_id, "c", "i", "s", None, 0, 0, 1, 1, 99.0, "dlib-resnet-v1", None, 0)


def _deps(store: BruteForceStore, matcher: Matcher) -> OpDeps:
    fields: dict[str, Any] = {"engine": None, "idempotency": None, "pages": None}
    return OpDeps(store=cast(Any, store), matcher=matcher, region="r", account_id="a", **fields)


def _axis(i: int, length: float) -> np.ndarray:
    v = np.zeros(DIM)
    v[i] = length
    return v


@pytest.fixture
def planted() -> tuple[Matcher, dict[str, np.ndarray]]:
    """Face "crowded" sits among many cohort clusters, face "lonely" in an empty region; the
    crowded one is nearer the probe by raw distance, the lonely one scores better."""
    crowd = _axis(0, 1.0) + np.random.default_rng(3).normal(scale=0.01, size=(20, DIM))
    cohort = CohortNormaliser(crowd, np.full(20, 0.01), (20,) * 20, 2, 0.5, 0.1, 0.9)
    faces = {"crowded": _axis(0, 1.0) + _axis(2, 0.40), "lonely": _axis(2, 0.45)}
    return Matcher(CalibratedSimilarity(), cohort), faces


def test_max_faces_one_returns_the_best_normalised_face(
    planted: tuple[Matcher, dict[str, np.ndarray]],
) -> None:
    matcher, faces = planted
    probe = _axis(0, 1.0) * 0.5 + _axis(2, 0.1)
    store = BruteForceStore(faces)
    raw_order = sorted(faces, key=lambda f: np.linalg.norm(faces[f] - probe))
    everything = asyncio.run(scored_hits(_deps(store, matcher), C, probe, 0.0, 10))
    best = everything[0][0].face_id
    assert raw_order[0] != best  # normalisation reorders these two
    store.searches.clear()
    one = asyncio.run(scored_hits(_deps(store, matcher), C, probe, 0.0, 1))
    assert [r.face_id for r, _ in one] == [best]
    assert len(store.searches) == 2  # the first search was full, so it was widened
    assert one[0][1] == pytest.approx(everything[0][1])


def test_no_face_below_the_threshold_and_best_first(
    planted: tuple[Matcher, dict[str, np.ndarray]],
) -> None:
    matcher, faces = planted
    probe = _axis(2, 0.45)
    store = BruteForceStore(faces)
    hits = asyncio.run(scored_hits(_deps(store, matcher), C, probe, 0.0, 10))
    sims = [s for _, s in hits]
    assert sims == sorted(sims, reverse=True)
    threshold = (sims[0] + sims[1]) / 2
    above = asyncio.run(scored_hits(_deps(store, matcher), C, probe, threshold, 10))
    assert [r.face_id for r, _ in above] == [hits[0][0].face_id]


def test_the_raw_matcher_searches_once_within_the_calibrated_distance() -> None:
    faces = {f"f{i}": _axis(1, 0.1 * i) for i in range(10)}
    store = BruteForceStore(faces)
    matcher = raw_matcher()
    hits = asyncio.run(scored_hits(_deps(store, matcher), C, np.zeros(DIM, np.float32), 80.0, 3))
    assert [r.face_id for r, _ in hits] == ["f0", "f1", "f2"]
    assert store.searches == [(3, matcher.similarity.distance_for(80.0))]


def test_faces_deleted_between_index_and_lookup_are_dropped(
    planted: tuple[Matcher, dict[str, np.ndarray]],
) -> None:
    matcher, faces = planted

    class Vanishing(BruteForceStore):
        def indexed_vectors(
            self, collection: CollectionRecord, face_ids: list[str]
        ) -> tuple[list[str], np.ndarray]:
            return [], np.zeros((0, DIM))  # every hit was deleted after the index answered

    hits = asyncio.run(scored_hits(_deps(Vanishing(faces), matcher), C, _axis(2, 0.45), 0.0, 10))
    assert hits == []

    class Unrecorded(BruteForceStore):
        def get_faces(
            self, collection: CollectionRecord, face_ids: list[str]
        ) -> dict[str, FaceRecord]:
            return {f: _record(f) for f in face_ids if f != "lonely"}  # deleted after scoring

    hits = asyncio.run(scored_hits(_deps(Unrecorded(faces), matcher), C, _axis(2, 0.45), 0.0, 10))
    assert [r.face_id for r, _ in hits] == ["crowded"]


def test_only_the_faces_kept_are_read_from_the_database(
    planted: tuple[Matcher, dict[str, np.ndarray]],
) -> None:
    matcher, faces = planted
    many = {**faces, **{f"far{i}": _axis(3, 5.0 + i) for i in range(50)}}
    store = BruteForceStore(many)
    probe = _axis(2, 0.45)
    everything = asyncio.run(scored_hits(_deps(store, matcher), C, probe, 0.0, 100))
    assert len(everything) == len(many)
    best_two = [r.face_id for r, _ in everything[:2]]
    assert sorted(best_two) == ["crowded", "lonely"]
    store.records_read.clear()
    threshold = everything[1][1]
    hits = asyncio.run(scored_hits(_deps(store, matcher), C, probe, threshold, 100))
    assert [r.face_id for r, _ in hits] == best_two
    assert sorted(store.records_read) == sorted(best_two)  # not the 50 others
