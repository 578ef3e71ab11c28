"""SearchFaces and SearchFacesByImage: 1:N search of a collection.

:func:`scored_hits` is the one 1:N search (SearchUsers uses it too). The threshold becomes a
raw-distance bound for the vector index (``Matcher.distance_bound``: the largest distance at which
*some* face could still reach the threshold once normalised); each hit's Similarity is then
computed from its normalised score, hits below the threshold are dropped, and the rest are
ordered by Similarity, so the response never lists a face below the threshold.

Exactness with normalisation: the index ranks by raw distance, the response by normalised score.
When the index returns a full ``k`` hits, a face a little further away could still outscore the
last of them (by at most ``2 * max_shift`` of raw distance, see ``PairScorer.max_shift``), so the
search is repeated out to that distance with up to :data:`WIDEN_EXTRA` more hits before the best
``k`` are kept.

The search's own estimate of its false candidates (:mod:`facegate.ops.estimates`): when the
request carries a :class:`~facegate.ops.estimates.FalseCandidates` and the collection holds at
least :data:`~facegate.engine.tail.MIN_TAIL_FACES` faces, the probe's
:data:`~facegate.engine.tail.TAIL_SIZE` + 1 nearest faces are read once more from the index (one
more pass over the collection's vectors, unless they reach past the search's distance bound in
an exact index: then the search takes its hits from them and needs no pass of its own,
bench/tail_cost.py; for a faceres or fused collection the pass reads each face's projection
sketch, not its 1,024 cosine values, and only the few faces the sketch cannot rule out in full:
``store.vectors.ExactIndex``), scored, and their tail fitted; with a bound, the threshold rises
to where the fit expects at most that many false candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from facegate.engine.matching import Matcher
from facegate.engine.tail import MIN_TAIL_FACES, TAIL_SIZE, fit_tail
from facegate.engine.types import Vector
from facegate.errors import InvalidParameterException, ResourceNotFoundException
from facegate.operations import cap_limit, default_threshold
from facegate.ops.common import (
    OpDeps,
    collection_matcher,
    image_bytes,
    model_of,
    pct,
    run_sync,
)
from facegate.ops.detect import descriptor_of
from facegate.ops.estimates import FalseCandidates
from facegate.ops.quality_filter import quality_reasons
from facegate.ops.types import BoundingBox, FaceMatch, bounding_box, stored_face
from facegate.store.records import CollectionRecord, FaceRecord
from facegate.store.store import FaceStore
from facegate.store.vectors import Hit

WIDEN_EXTRA = 4096
"""How many more hits a widened search (see the module docstring) may read."""


async def scored_hits(
    deps: OpDeps, collection: CollectionRecord, probe: Vector, threshold_pct: float, k: int
) -> list[tuple[FaceRecord, float]]:
    """Up to ``k`` stored faces reaching ``threshold_pct``: (record, Similarity), best first.

    The index answers with ids and raw distances within the matcher's distance bound (which
    must allow for the largest shift normalisation can make, so it takes in many more faces
    than will match); their descriptors come from the in-memory index, they are scored, and
    only the faces kept are read from the database. A face deleted meanwhile is dropped. All of
    it runs in one worker thread (one hop from the event loop). The collection's own model's
    matcher scores (:func:`collection_matcher`: its distance, cohort and calibration)."""
    matcher = collection_matcher(deps, collection)
    return await run_sync(
        _scored, deps.store, matcher, collection, probe, threshold_pct, k, deps.false_candidates
    )


def _tail_threshold(
    store: FaceStore,
    matcher: Matcher,
    collection: CollectionRecord,
    probe: Vector,
    probe_stat: float,
    threshold_pct: float,
    estimate: FalseCandidates,
) -> tuple[float, list[Hit]]:
    """The threshold after the probe's own tail (:mod:`facegate.ops.estimates`): raised where
    the estimate's bound needs it; the fit's expectation recorded; and the probe's nearest
    faces it read (the search reuses them when they reach past its distance bound). Unchanged,
    and nothing recorded or read, for a collection too small to fit."""
    faces = store.indexed_count(collection)
    if faces < MIN_TAIL_FACES:
        return threshold_pct, []
    weighted = {} if matcher.weights is None else {"weights": matcher.weights}
    sample = store.nearest(collection, probe, TAIL_SIZE + 1, math.inf, **weighted)
    present, vectors = store.indexed_vectors(collection, [h.face_id for h in sample])
    alive = set(present)
    distances = np.array([h.distance for h in sample if h.face_id in alive])
    stats = matcher.stats(vectors) if matcher.normalised else np.zeros(len(distances))
    fit = fit_tail(matcher.scorer.scores(distances, probe_stat, stats), faces)
    if fit is None:  # faces deleted meanwhile: too few left to fit
        return threshold_pct, sample
    similarity = matcher.similarity
    raised = None
    if estimate.bound is not None:
        limit = fit.limit_for(estimate.bound)
        wanted = 100.0 if limit <= 0.0 else float(similarity.similarity_pct(limit))
        if wanted > threshold_pct:
            raised = threshold_pct = wanted
    used = 0.0 if threshold_pct >= 100.0 else similarity.distance_for(threshold_pct)
    estimate.note(faces, fit.expected_at(used), raised)
    return threshold_pct, sample


def _scored(
    store: FaceStore,
    matcher: Matcher,
    collection: CollectionRecord,
    probe: Vector,
    threshold_pct: float,
    k: int,
    estimate: FalseCandidates | None = None,
) -> list[tuple[FaceRecord, float]]:
    probe_stat = float(matcher.stats(probe)[0])
    sample: list[Hit] = []
    if estimate is not None:
        threshold_pct, sample = _tail_threshold(
            store, matcher, collection, probe, probe_stat, threshold_pct, estimate
        )
    bound = matcher.distance_bound(threshold_pct, probe_stat)
    # the parts of a fused model's space are weighted as its calibration says
    weighted = {} if matcher.weights is None else {"weights": matcher.weights}
    if (
        collection.index_kind == "exact"
        and len(sample) == TAIL_SIZE + 1
        and sample[-1].distance > bound
    ):
        # the tail's nearest faces reach past the bound: every face within it is among them
        # (exact index only: an approximate one explores more for a larger k)
        hits = [h for h in sample if h.distance <= bound][:k]
    else:
        hits = store.nearest(collection, probe, k, bound, **weighted)
    if not hits:
        return []
    if matcher.normalised and len(hits) >= k:
        reach = min(bound, hits[-1].distance + 2.0 * matcher.scorer.max_shift)
        hits = store.nearest(collection, probe, k + WIDEN_EXTRA, reach, **weighted)
    if matcher.normalised:
        present, vectors = store.indexed_vectors(collection, [h.face_id for h in hits])
        if len(present) < len(hits):  # deleted since the index search
            alive = set(present)
            hits = [h for h in hits if h.face_id in alive]
        if not hits:
            return []
        stats = matcher.stats(vectors)
    else:
        stats = np.zeros(len(hits))
    distances = np.array([h.distance for h in hits])
    similarities = matcher.similarities(distances, probe_stat, stats)
    scored = [
        (hit.face_id, float(s))
        for hit, s in zip(hits, similarities, strict=True)
        if s + 1e-9 >= threshold_pct
    ]
    scored.sort(key=lambda fs: -fs[1])  # stable: equal Similarity keeps distance order
    kept = scored[:k]
    records = store.get_faces(collection, [f for f, _ in kept])
    return [(records[f], s) for f, s in kept if f in records]


async def search_vector(
    deps: OpDeps,
    collection: CollectionRecord,
    probe: Vector,
    threshold_pct: float,
    max_faces: int,
    exclude: str | None = None,
) -> tuple[FaceMatch, ...]:
    """Faces within the threshold, most similar first, at most ``max_faces``."""
    k = max_faces + (1 if exclude else 0)
    hits = await scored_hits(deps, collection, probe, threshold_pct, k)
    matches = [FaceMatch(s, stored_face(r)) for r, s in hits if r.face_id != exclude]
    return tuple(matches[:max_faces])


@dataclass(frozen=True)
class SearchFacesResponse:
    searched_face_id: str
    face_matches: tuple[FaceMatch, ...]
    face_model_version: str


async def search_faces(deps: OpDeps, p: dict[str, Any]) -> SearchFacesResponse:
    collection_id: str = p["collection_id"]
    face_id: str = p["face_id"]
    collection = await run_sync(deps.collection, collection_id)
    probe = await run_sync(deps.store.descriptor, collection, face_id)
    if probe is None:
        raise ResourceNotFoundException(
            f"The face id {face_id} does not exist in collection {collection_id}."
        )
    matches = await search_vector(
        deps,
        collection,
        probe,
        pct(p.get("face_match_threshold"), default_threshold("SearchFaces")),
        int(p.get("max_faces") or cap_limit("SearchFaces")),
        exclude=face_id,
    )
    return SearchFacesResponse(face_id, matches, collection.face_model_version)


@dataclass(frozen=True)
class SearchFacesByImageResponse:
    searched_face_box_ratio: BoundingBox
    searched_face_confidence_pct: float
    face_matches: tuple[FaceMatch, ...]
    face_model_version: str


async def search_faces_by_image(deps: OpDeps, p: dict[str, Any]) -> SearchFacesByImageResponse:
    """Search with the largest face in the image (Rekognition's rule)."""
    collection = await run_sync(deps.collection, p["collection_id"])
    analysis = await deps.engine.analyze_async(
        image_bytes(p["image"]), max_faces=1, **model_of(deps, collection)
    )
    if not analysis.faces:
        raise InvalidParameterException("There are no faces in the image. Should be at least 1.")
    face = analysis.faces[0]
    if quality_reasons(face.detected, p.get("quality_filter") or "NONE"):
        raise InvalidParameterException(
            "The largest face in the image does not meet the requested QualityFilter."
        )
    matches = await search_vector(
        deps,
        collection,
        descriptor_of(face),
        pct(p.get("face_match_threshold"), default_threshold("SearchFacesByImage")),
        int(p.get("max_faces") or cap_limit("SearchFacesByImage")),
    )
    return SearchFacesByImageResponse(
        searched_face_box_ratio=bounding_box(face.detected),
        searched_face_confidence_pct=face.detected.confidence_pct,
        face_matches=matches,
        face_model_version=collection.face_model_version,
    )
