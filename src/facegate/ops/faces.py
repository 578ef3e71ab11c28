"""IndexFaces, ListFaces, DeleteFaces.

IndexFaces stores descriptors and face metadata, never the image (as Rekognition). Indexing the
same image bytes again into the same collection with the same ExternalImageId returns the faces
already stored instead of duplicating them.

Each operation resolves its collection once (``OpDeps.collection``: the one the policy decision
was about) and hands that record, with its identity, to the store, which checks inside each
write's transaction that it still exists: a collection deleted while IndexFaces analyses the
image answers ResourceNotFoundException and stores nothing, also when its id names a new
collection by then.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from facegate.engine.types import BoxRatio, Face
from facegate.operations import requested_attributes
from facegate.ops.common import OpDeps, image_bytes, model_of, run_sync
from facegate.ops.detect import descriptor_of
from facegate.ops.quality_filter import quality_reasons, quality_score
from facegate.ops.types import FaceDetail, StoredFace, face_detail, stored_face
from facegate.store.records import FaceRecord, NewFace

MAX_INDEX_FACES = 100
DEFAULT_LIST_FACES = 1000


@dataclass(frozen=True)
class FaceRecordOut:
    face: StoredFace
    face_detail: FaceDetail


@dataclass(frozen=True)
class UnindexedFace:
    reasons: tuple[str, ...]
    face_detail: FaceDetail


@dataclass(frozen=True)
class IndexFacesResponse:
    face_records: tuple[FaceRecordOut, ...]
    face_model_version: str
    unindexed_faces: tuple[UnindexedFace, ...]


def _select(
    faces: tuple[Face, ...], level: str, max_faces: int
) -> tuple[list[Face], list[UnindexedFace]]:
    """Apply the quality filter, then keep the best ``max_faces`` (quality, then box size)."""
    keep: list[Face] = []
    dropped: list[UnindexedFace] = []
    for face in faces:
        reasons = quality_reasons(face.detected, level)
        if reasons:
            dropped.append(UnindexedFace(tuple(reasons), face_detail(face.detected)))
        else:
            keep.append(face)
    if len(keep) > max_faces:
        ranked = sorted(keep, key=lambda f: (-quality_score(f.detected), -f.detected.box_px.area))
        over = ranked[max_faces:]
        dropped.extend(UnindexedFace(("EXCEEDS_MAX_FACES",), face_detail(f.detected)) for f in over)
        kept_ids = {id(f) for f in ranked[:max_faces]}
        keep = [f for f in keep if id(f) in kept_ids]
    return keep, dropped


async def index_faces(deps: OpDeps, p: dict[str, Any]) -> IndexFacesResponse:
    collection = await run_sync(deps.collection, p["collection_id"])
    external_id: str | None = p.get("external_image_id")
    level = p.get("quality_filter") or "AUTO"
    max_faces = min(int(p.get("max_faces") or MAX_INDEX_FACES), MAX_INDEX_FACES)
    # the faces are described by the collection's own model (its FaceModelVersion)
    analysis = await deps.engine.analyze_async(
        image_bytes(p["image"]),
        attributes=requested_attributes(p.get("detection_attributes")),
        **model_of(deps, collection),
    )
    keep, unindexed = _select(analysis.faces, level, max_faces)
    existing = await run_sync(deps.store.faces_of_image, collection, analysis.sha256, external_id)
    if existing:
        records = existing  # same image, same ExternalImageId: no duplicate metadata
    else:
        image_id, now = str(uuid.uuid4()), time.time()
        new = [
            NewFace(
                record=FaceRecord(
                    face_id=str(uuid.uuid4()),
                    collection_uid=collection.uid,
                    image_id=image_id,
                    image_sha256=analysis.sha256,
                    external_image_id=external_id,
                    box_left_ratio=f.detected.box_ratio.left,
                    box_top_ratio=f.detected.box_ratio.top,
                    box_width_ratio=f.detected.box_ratio.width,
                    box_height_ratio=f.detected.box_ratio.height,
                    confidence_pct=f.detected.confidence_pct,
                    model_version=collection.face_model_version,
                    user_id=None,
                    indexed_at=now,
                    consent_ref=deps.enrolment.consent_ref,
                    retain_until=deps.enrolment.retain_until,
                ),
                descriptor=descriptor_of(f),
            )
            for f in keep
        ]
        await run_sync(deps.store.add_faces, collection, new)
        records = [n.record for n in new]
    # Same bytes give the same detections (the engine is deterministic), so a stored face is
    # paired with its detection by its exact box, also for faces stored by an earlier call.
    detected = {_box_key(f.detected.box_ratio): f.detected for f in analysis.faces}
    out = tuple(
        FaceRecordOut(stored_face(r), face_detail(detected[_record_key(r)]))
        for r in records
        if _record_key(r) in detected
    )
    return IndexFacesResponse(out, collection.face_model_version, tuple(unindexed))


def _box_key(box: BoxRatio) -> tuple[float, float, float, float]:
    return (box.left, box.top, box.width, box.height)


def _record_key(r: FaceRecord) -> tuple[float, float, float, float]:
    return (r.box_left_ratio, r.box_top_ratio, r.box_width_ratio, r.box_height_ratio)


@dataclass(frozen=True)
class ListFacesResponse:
    faces: tuple[StoredFace, ...]
    next_token: str | None
    face_model_version: str


async def list_faces(deps: OpDeps, p: dict[str, Any]) -> ListFacesResponse:
    collection = await run_sync(deps.collection, p["collection_id"])
    limit = p.get("max_results")
    limit = DEFAULT_LIST_FACES if limit is None else int(limit)
    user_id: str | None = p.get("user_id")
    face_ids: list[str] | None = p.get("face_ids")
    scope = f"ListFaces\0{collection.uid}\0{user_id}\0{','.join(face_ids or [])}"
    after = deps.pages.cursor(scope, p.get("next_token"))
    rows = await run_sync(deps.store.list_faces, collection, after, limit + 1, user_id, face_ids)
    page, more = rows[:limit], len(rows) > limit
    token = deps.pages.issue(scope, page[-1][0]) if more and page else None
    return ListFacesResponse(
        faces=tuple(stored_face(r) for _, r in page),
        next_token=token,
        face_model_version=collection.face_model_version,
    )


@dataclass(frozen=True)
class UnsuccessfulFaceDeletion:
    face_id: str
    user_id: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DeleteFacesResponse:
    deleted_faces: tuple[str, ...]
    unsuccessful_face_deletions: tuple[UnsuccessfulFaceDeletion, ...]


async def delete_faces(deps: OpDeps, p: dict[str, Any]) -> DeleteFacesResponse:
    """Delete faces; faces associated with a user are refused (disassociate them first)."""
    face_ids: list[str] = list(dict.fromkeys(p["face_ids"]))
    collection = await run_sync(deps.collection, p["collection_id"])
    known = await run_sync(deps.store.get_faces, collection, face_ids)
    deleted = set(await run_sync(deps.store.delete_faces, collection, face_ids))
    failures = []
    for face_id in face_ids:
        if face_id in deleted:
            continue
        record = known.get(face_id)
        if record is None:
            failures.append(UnsuccessfulFaceDeletion(face_id, None, ("FACE_NOT_FOUND",)))
        else:
            failures.append(
                UnsuccessfulFaceDeletion(
                    face_id, record.user_id, ("ASSOCIATED_TO_AN_EXISTING_USER",)
                )
            )
    return DeleteFacesResponse(
        deleted_faces=tuple(f for f in face_ids if f in deleted),
        unsuccessful_face_deletions=tuple(failures),
    )
