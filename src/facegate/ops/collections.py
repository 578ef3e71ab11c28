"""CreateCollection, DescribeCollection, ListCollections, DeleteCollection.

Collection ids are per organisation (as Rekognition's are per account): an organisation sees,
names and creates only its own, and another organisation's collection of the same id is, to it,
a collection that does not exist (ResourceNotFoundException; CreateCollection succeeds).

A collection keeps the descriptor model it is created with (``FaceModelVersion``) until it is
deleted: the server's default (``FACEGATE_FACE_MODEL``), or the one the tag
``facegate:face-model`` names at CreateCollection, if it is installed and calibrated
(``ops.common.CollectionModels``). The tag stays among the collection's tags as a record of the
choice; changing or removing it later changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facegate.errors import InvalidParameterException
from facegate.ops.common import MODEL_TAG, OpDeps, run_sync
from facegate.vectorspace import DLIB_SPACE

INDEX_TAG = "facegate:index"
"""Tag chosen at CreateCollection to select the vector index: "exact" (default) or "hnsw"."""

DEFAULT_LIST_COLLECTIONS = 1000


@dataclass(frozen=True)
class CreateCollectionResponse:
    status_code: int
    collection_arn: str
    face_model_version: str


async def create_collection(deps: OpDeps, p: dict[str, Any]) -> CreateCollectionResponse:
    collection_id: str = p["collection_id"]
    tags: dict[str, str] = dict(p.get("tags") or {})
    kind = tags.get(INDEX_TAG, "exact")
    if kind not in ("exact", "hnsw"):
        raise InvalidParameterException(f'Tag {INDEX_TAG} must be "exact" or "hnsw".')
    # the descriptor model the collection keeps until it is deleted (Rekognition's
    # FaceModelVersion): the server's default, or the one the tag names, if it can serve
    if deps.models is not None:
        model = await run_sync(deps.models.choose, tags.get(MODEL_TAG))
        version, space = model.version, model.space
    elif tags.get(MODEL_TAG, deps.engine.model_version) != deps.engine.model_version:
        raise InvalidParameterException(f"Tag {MODEL_TAG}: this server has one face model.")
    else:
        version, space = deps.engine.model_version, DLIB_SPACE
    if kind == "hnsw" and not space.simple:
        raise InvalidParameterException(
            f"Tag {INDEX_TAG}: the face model {version} stores several descriptors per face; "
            'its collections use the "exact" index.'
        )
    arn = deps.collection_arn(collection_id)
    await run_sync(
        deps.store.create_collection,
        collection_id,
        arn,
        version,
        kind,
        tags,
        deps.namespace,
        space,
    )
    return CreateCollectionResponse(200, arn, version)


@dataclass(frozen=True)
class DescribeCollectionResponse:
    face_count: int
    face_model_version: str
    collection_arn_upper: str
    creation_timestamp: float
    user_count: int


async def describe_collection(deps: OpDeps, p: dict[str, Any]) -> DescribeCollectionResponse:
    record = await run_sync(deps.collection, p["collection_id"])
    faces, users = await run_sync(deps.store.counts, record)
    return DescribeCollectionResponse(
        face_count=faces,
        face_model_version=record.face_model_version,
        # derived, not stored: collections created before facegate used Rekognition's form
        # stored their ARN without "arn:"
        collection_arn_upper=deps.collection_arn(record.collection_id),
        creation_timestamp=record.created_at,
        user_count=users,
    )


@dataclass(frozen=True)
class ListCollectionsResponse:
    collection_ids: tuple[str, ...]
    next_token: str | None
    face_model_versions: tuple[str, ...]


async def list_collections(deps: OpDeps, p: dict[str, Any]) -> ListCollectionsResponse:
    limit = p.get("max_results")
    limit = DEFAULT_LIST_COLLECTIONS if limit is None else int(limit)
    scope = f"ListCollections\0{deps.namespace}"
    after = deps.pages.cursor(scope, p.get("next_token"))
    rows = await run_sync(deps.store.list_collections, after, limit + 1, deps.namespace)
    page, more = rows[:limit], len(rows) > limit
    token = deps.pages.issue(scope, page[-1][0]) if more and page else None
    return ListCollectionsResponse(
        collection_ids=tuple(r.collection_id for _, r in page),
        next_token=token,
        face_model_versions=tuple(r.face_model_version for _, r in page),
    )


@dataclass(frozen=True)
class DeleteCollectionResponse:
    status_code: int


async def delete_collection(deps: OpDeps, p: dict[str, Any]) -> DeleteCollectionResponse:
    record = await run_sync(deps.collection, p["collection_id"])
    await run_sync(deps.store.delete_collection, record)
    return DeleteCollectionResponse(200)
