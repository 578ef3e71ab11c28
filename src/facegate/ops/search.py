"""SearchFaces and SearchFacesByImage: 1:N search of a collection.

The threshold is converted once into a descriptor distance (``SimilarityModel.distance_for``), the
vector index returns the nearest faces within it, and each match's Similarity is computed from its
distance with the same model, so the response never lists a face below the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facegate.engine.types import Vector
from facegate.errors import InvalidParameterException, ResourceNotFoundException
from facegate.ops.common import OpDeps, image_bytes, max_distance, pct, run_sync
from facegate.ops.detect import descriptor_of
from facegate.ops.quality_filter import quality_reasons
from facegate.ops.types import BoundingBox, FaceMatch, bounding_box, stored_face

DEFAULT_FACE_MATCH_THRESHOLD = 80.0
DEFAULT_MAX_FACES = 4096  # the API's maximum: the threshold, not a count, limits results


async def search_vector(
    deps: OpDeps,
    collection_id: str,
    probe: Vector,
    threshold_pct: float,
    max_faces: int,
    exclude: str | None = None,
) -> tuple[FaceMatch, ...]:
    """Faces within the threshold, most similar first, at most ``max_faces``."""
    limit = max_distance(deps.similarity, threshold_pct)
    k = max_faces + (1 if exclude else 0)
    hits = await run_sync(deps.store.search, collection_id, probe, k, limit)
    matches = []
    for record, distance in hits:
        if record.face_id == exclude:
            continue
        similarity = deps.similarity.similarity_pct(distance)
        if similarity + 1e-9 >= threshold_pct:
            matches.append(FaceMatch(similarity, stored_face(record)))
    return tuple(matches[:max_faces])


@dataclass(frozen=True)
class SearchFacesResponse:
    searched_face_id: str
    face_matches: tuple[FaceMatch, ...]
    face_model_version: str


async def search_faces(deps: OpDeps, p: dict[str, Any]) -> SearchFacesResponse:
    collection_id: str = p["collection_id"]
    face_id: str = p["face_id"]
    collection = await run_sync(deps.store.get_collection, collection_id)
    probe = await run_sync(deps.store.descriptor, collection_id, face_id)
    if probe is None:
        raise ResourceNotFoundException(
            f"The face id {face_id} does not exist in collection {collection_id}."
        )
    matches = await search_vector(
        deps,
        collection_id,
        probe,
        pct(p.get("face_match_threshold"), DEFAULT_FACE_MATCH_THRESHOLD),
        int(p.get("max_faces") or DEFAULT_MAX_FACES),
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
    collection_id: str = p["collection_id"]
    collection = await run_sync(deps.store.get_collection, collection_id)
    analysis = await deps.engine.analyze_async(image_bytes(p["image"]), max_faces=1)
    if not analysis.faces:
        raise InvalidParameterException("There are no faces in the image. Should be at least 1.")
    face = analysis.faces[0]
    if quality_reasons(face.detected, p.get("quality_filter") or "NONE"):
        raise InvalidParameterException(
            "The largest face in the image does not meet the requested QualityFilter."
        )
    matches = await search_vector(
        deps,
        collection_id,
        descriptor_of(face),
        pct(p.get("face_match_threshold"), DEFAULT_FACE_MATCH_THRESHOLD),
        int(p.get("max_faces") or DEFAULT_MAX_FACES),
    )
    return SearchFacesByImageResponse(
        searched_face_box_ratio=bounding_box(face.detected),
        searched_face_confidence_pct=face.detected.confidence_pct,
        face_matches=matches,
        face_model_version=collection.face_model_version,
    )
