"""DetectFaces and CompareFaces: stateless, nothing is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facegate.engine.types import Face, Vector
from facegate.errors import EngineUnavailableError, InvalidParameterException
from facegate.operations import default_threshold, requested_attributes
from facegate.ops.common import OpDeps, image_bytes, pct
from facegate.ops.quality_filter import quality_reasons
from facegate.ops.types import (
    BoundingBox,
    ComparedFace,
    FaceDetail,
    bounding_box,
    compared_face,
    face_detail,
)


@dataclass(frozen=True)
class DetectFacesResponse:
    face_details: tuple[FaceDetail, ...]


async def detect_faces(deps: OpDeps, p: dict[str, Any]) -> DetectFacesResponse:
    """All faces (at most 100, largest first), each with the facial attributes ``Attributes``
    asks for (``operations.requested_attributes``: DEFAULT none, ALL every one) that the engine
    estimates; the others are left out, never invented (docs/attributes.md). The obligations
    have already removed any attribute a policy drops from ``Attributes``."""
    analysis = await deps.engine.analyze_async(
        image_bytes(p["image"]),
        descriptors=False,
        attributes=requested_attributes(p.get("attributes")),
    )
    return DetectFacesResponse(tuple(face_detail(f.detected) for f in analysis.faces))


@dataclass(frozen=True)
class SourceImageFace:
    box_ratio: BoundingBox
    confidence_pct: float


@dataclass(frozen=True)
class CompareFacesMatch:
    similarity_pct: float
    face: ComparedFace


@dataclass(frozen=True)
class CompareFacesResponse:
    source_image_face: SourceImageFace
    face_matches: tuple[CompareFacesMatch, ...]
    unmatched_faces: tuple[ComparedFace, ...]


def descriptor_of(face: Face) -> Vector:
    if face.descriptor is None:
        raise EngineUnavailableError("The engine returned a face without a descriptor.")
    return face.descriptor


async def compare_faces(deps: OpDeps, p: dict[str, Any]) -> CompareFacesResponse:
    """The largest source face against each of the target's (up to 100) faces, both described
    by the server's default face model (``FACEGATE_FACE_MODEL``; no collection names another)
    and scored by its matcher (``deps.matcher``)."""
    threshold = pct(p.get("similarity_threshold"), default_threshold("CompareFaces"))
    level = p.get("quality_filter") or "NONE"
    default = deps.models.default_version if deps.models is not None else None
    model: dict[str, Any] = (
        {} if default in (None, deps.engine.model_version) else {"model": default}
    )
    source = await deps.engine.analyze_async(
        image_bytes(p["source_image"], "SourceImage"), max_faces=1, **model
    )
    target = await deps.engine.analyze_async(image_bytes(p["target_image"], "TargetImage"), **model)
    if not source.faces or quality_reasons(source.faces[0].detected, level):
        raise InvalidParameterException("There are no faces in the source image.")
    if not target.faces:
        raise InvalidParameterException("There are no faces in the target image.")
    probe = descriptor_of(source.faces[0])
    matches: list[CompareFacesMatch] = []
    unmatched: list[ComparedFace] = []
    for face in target.faces:
        if quality_reasons(face.detected, level):
            continue
        similarity = deps.matcher.compare(probe, descriptor_of(face))
        if similarity >= threshold:
            matches.append(CompareFacesMatch(similarity, compared_face(face.detected)))
        else:
            unmatched.append(compared_face(face.detected))
    matches.sort(key=lambda m: -m.similarity_pct)
    src = source.faces[0].detected
    return CompareFacesResponse(
        source_image_face=SourceImageFace(bounding_box(src), src.confidence_pct),
        face_matches=tuple(matches),
        unmatched_faces=tuple(unmatched),
    )
