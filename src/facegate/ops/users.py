"""Users: CreateUser, DeleteUser, ListUsers, AssociateFaces, DisassociateFaces, SearchUsers,
SearchUsersByImage.

A user aggregates up to 100 faces of one person. A user's similarity to a probe is the highest
similarity between the probe and any of the user's faces (best-match aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facegate.engine.types import Vector
from facegate.errors import (
    ConflictException,
    InvalidParameterException,
    ResourceNotFoundException,
)
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
from facegate.ops.quality_filter import quality_reasons
from facegate.ops.search import scored_hits
from facegate.ops.types import FaceDetail, face_detail
from facegate.store.records import CollectionRecord

DEFAULT_LIST_USERS = 500
SEARCH_DEPTH = 20_000  # faces examined per probe when aggregating them into users


@dataclass(frozen=True)
class Empty:
    """Operations whose response has no members (CreateUser, DeleteUser, tags)."""


async def _require_user(deps: OpDeps, collection: CollectionRecord, user_id: str) -> None:
    if await run_sync(deps.store.get_user, collection, user_id) is None:
        raise ResourceNotFoundException(
            f"The user {user_id} does not exist in collection {collection.collection_id}."
        )


async def create_user(deps: OpDeps, p: dict[str, Any]) -> Empty:
    collection = await run_sync(deps.collection, p["collection_id"])
    user_id = p["user_id"]
    created = await run_sync(deps.store.create_user, collection, user_id)
    if created is None:
        raise ConflictException(f"A user with the id {user_id} already exists.")
    return Empty()


async def delete_user(deps: OpDeps, p: dict[str, Any]) -> Empty:
    collection = await run_sync(deps.collection, p["collection_id"])
    user_id = p["user_id"]
    if not await run_sync(deps.store.delete_user, collection, user_id):
        raise ResourceNotFoundException(
            f"The user {user_id} does not exist in collection {collection.collection_id}."
        )
    return Empty()


@dataclass(frozen=True)
class UserOut:
    user_id: str
    user_status: str


@dataclass(frozen=True)
class ListUsersResponse:
    users: tuple[UserOut, ...]
    next_token: str | None


async def list_users(deps: OpDeps, p: dict[str, Any]) -> ListUsersResponse:
    collection = await run_sync(deps.collection, p["collection_id"])
    limit = int(p.get("max_results") or DEFAULT_LIST_USERS)
    scope = f"ListUsers\0{collection.uid}"
    after = deps.pages.cursor(scope, p.get("next_token"))
    rows = await run_sync(deps.store.list_users, collection, after, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    token = deps.pages.issue(scope, page[-1][0]) if more and page else None
    return ListUsersResponse(tuple(UserOut(u.user_id, u.status) for _, u in page), token)


@dataclass(frozen=True)
class FaceIdOut:
    face_id: str


@dataclass(frozen=True)
class UnsuccessfulAssociation:
    face_id: str
    user_id: str | None
    confidence_pct: float | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class AssociateFacesResponse:
    associated_faces: tuple[FaceIdOut, ...]
    unsuccessful_face_associations: tuple[UnsuccessfulAssociation, ...]
    user_status: str


async def plan_associations(deps: OpDeps, p: dict[str, Any]) -> AssociateFacesResponse:
    """What AssociateFaces would do, computed without writing: a face is associated if it must
    resemble the user's existing faces (or, for a user without faces, the first face associated
    in this call) at ``UserMatchThreshold``. The answer lists the planned associations and the
    faces refused with their match confidence."""
    user_id = p["user_id"]
    threshold = pct(p.get("user_match_threshold"), default_threshold("AssociateFaces"))
    face_ids: list[str] = list(dict.fromkeys(p["face_ids"]))
    collection = await run_sync(deps.collection, p["collection_id"])
    await _require_user(deps, collection, user_id)
    records = await run_sync(deps.store.get_faces, collection, face_ids)
    reference = await run_sync(
        deps.store.descriptors,
        collection,
        await run_sync(deps.store.user_face_ids, collection, user_id),
    )
    candidates = await run_sync(deps.store.descriptors, collection, list(records))
    refs: list[Vector] = list(reference.values())
    matcher = collection_matcher(deps, collection)  # the collection's own model's
    accepted: list[str] = []
    failed: list[UnsuccessfulAssociation] = []
    for face_id in face_ids:
        record = records.get(face_id)
        if record is None:
            failed.append(UnsuccessfulAssociation(face_id, None, None, ("FACE_NOT_FOUND",)))
            continue
        if record.user_id is not None and record.user_id != user_id:
            failed.append(
                UnsuccessfulAssociation(
                    face_id, record.user_id, None, ("ASSOCIATED_TO_A_DIFFERENT_USER",)
                )
            )
            continue
        if record.user_id == user_id:
            accepted.append(face_id)
            continue
        vector = candidates[face_id]
        if refs:
            best = max(matcher.compare(vector, r) for r in refs)
            if best < threshold:
                failed.append(
                    UnsuccessfulAssociation(face_id, None, best, ("LOW_MATCH_CONFIDENCE",))
                )
                continue
        refs.append(vector)
        accepted.append(face_id)
    return AssociateFacesResponse(tuple(FaceIdOut(f) for f in accepted), tuple(failed), "ACTIVE")


async def apply_associations(
    deps: OpDeps, p: dict[str, Any], planned: AssociateFacesResponse
) -> AssociateFacesResponse:
    """Write a plan of :func:`plan_associations`, against the store as it is now: a planned face
    already the user's stays associated (so applying twice writes once), one deleted since is
    FACE_NOT_FOUND, one taken by another user since is ASSOCIATED_TO_A_DIFFERENT_USER; the
    rest are associated in one transaction."""
    user_id = p["user_id"]
    collection = await run_sync(deps.collection, p["collection_id"])
    await _require_user(deps, collection, user_id)
    planned_ids = [f.face_id for f in planned.associated_faces]
    records = await run_sync(deps.store.get_faces, collection, planned_ids)
    accepted: list[str] = []
    failed = list(planned.unsuccessful_face_associations)
    fresh: list[str] = []
    for face_id in planned_ids:
        record = records.get(face_id)
        if record is None:
            failed.append(UnsuccessfulAssociation(face_id, None, None, ("FACE_NOT_FOUND",)))
        elif record.user_id is not None and record.user_id != user_id:
            failed.append(
                UnsuccessfulAssociation(
                    face_id, record.user_id, None, ("ASSOCIATED_TO_A_DIFFERENT_USER",)
                )
            )
        else:
            accepted.append(face_id)
            if record.user_id is None:
                fresh.append(face_id)
    await run_sync(deps.store.set_user_of_faces, collection, user_id, fresh)
    return AssociateFacesResponse(tuple(FaceIdOut(f) for f in accepted), tuple(failed), "ACTIVE")


async def associate_faces(deps: OpDeps, p: dict[str, Any]) -> AssociateFacesResponse:
    """AssociateFaces: plan (:func:`plan_associations`), then write the plan."""
    return await apply_associations(deps, p, await plan_associations(deps, p))


async def apply_held_associations(
    deps: OpDeps, p: dict[str, Any], held: dict[str, Any]
) -> AssociateFacesResponse:
    """Write a plan that was held for human review and released (``held``: the planned answer
    in wire form)."""
    return await apply_associations(deps, p, _planned_from_wire(held))


def _planned_from_wire(held: dict[str, Any]) -> AssociateFacesResponse:
    return AssociateFacesResponse(
        tuple(FaceIdOut(str(f["FaceId"])) for f in held.get("AssociatedFaces") or ()),
        tuple(
            UnsuccessfulAssociation(
                str(u["FaceId"]),
                u.get("UserId"),
                u.get("Confidence"),
                tuple(str(r) for r in u.get("Reasons") or ()),
            )
            for u in held.get("UnsuccessfulFaceAssociations") or ()
        ),
        str(held.get("UserStatus") or "ACTIVE"),
    )


@dataclass(frozen=True)
class UnsuccessfulDisassociation:
    face_id: str
    user_id: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DisassociateFacesResponse:
    disassociated_faces: tuple[FaceIdOut, ...]
    unsuccessful_face_disassociations: tuple[UnsuccessfulDisassociation, ...]
    user_status: str


async def disassociate_faces(deps: OpDeps, p: dict[str, Any]) -> DisassociateFacesResponse:
    user_id = p["user_id"]
    face_ids: list[str] = list(dict.fromkeys(p["face_ids"]))
    collection = await run_sync(deps.collection, p["collection_id"])
    await _require_user(deps, collection, user_id)
    records = await run_sync(deps.store.get_faces, collection, face_ids)
    done: list[str] = []
    failed: list[UnsuccessfulDisassociation] = []
    for face_id in face_ids:
        record = records.get(face_id)
        if record is None:
            failed.append(UnsuccessfulDisassociation(face_id, None, ("FACE_NOT_FOUND",)))
        elif record.user_id != user_id:
            failed.append(
                UnsuccessfulDisassociation(
                    face_id, record.user_id, ("ASSOCIATED_TO_A_DIFFERENT_USER",)
                )
            )
        else:
            done.append(face_id)
    await run_sync(deps.store.set_user_of_faces, collection, None, done)
    return DisassociateFacesResponse(tuple(FaceIdOut(f) for f in done), tuple(failed), "ACTIVE")


@dataclass(frozen=True)
class MatchedUser:
    user_id: str
    user_status: str


@dataclass(frozen=True)
class UserMatch:
    similarity_pct: float
    user: MatchedUser


async def match_users(
    deps: OpDeps,
    collection: CollectionRecord,
    probes: list[Vector],
    threshold_pct: float,
    max_users: int,
    exclude_user: str | None = None,
) -> tuple[UserMatch, ...]:
    """Users whose best face reaches the threshold for any probe, most similar first."""
    best: dict[str, float] = {}
    for probe in probes:
        hits = await scored_hits(deps, collection, probe, threshold_pct, SEARCH_DEPTH)
        for record, similarity in hits:
            if record.user_id is None or record.user_id == exclude_user:
                continue
            best[record.user_id] = max(best.get(record.user_id, 0.0), similarity)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:max_users]
    return tuple(UserMatch(s, MatchedUser(u, "ACTIVE")) for u, s in ranked)


@dataclass(frozen=True)
class SearchedFace:
    face_id: str


@dataclass(frozen=True)
class SearchedUser:
    user_id: str


@dataclass(frozen=True)
class SearchUsersResponse:
    user_matches: tuple[UserMatch, ...]
    face_model_version: str
    searched_face: SearchedFace | None
    searched_user: SearchedUser | None


async def search_users(deps: OpDeps, p: dict[str, Any]) -> SearchUsersResponse:
    collection_id: str = p["collection_id"]
    user_id, face_id = p.get("user_id"), p.get("face_id")
    if (user_id is None) == (face_id is None):
        raise InvalidParameterException("Specify exactly one of UserId and FaceId.")
    collection = await run_sync(deps.collection, collection_id)
    if face_id is not None:
        probe = await run_sync(deps.store.descriptor, collection, face_id)
        if probe is None:
            raise ResourceNotFoundException(
                f"The face id {face_id} does not exist in collection {collection_id}."
            )
        probes = [probe]
    else:
        assert user_id is not None  # exactly one of the two, checked above
        await _require_user(deps, collection, user_id)
        ids = await run_sync(deps.store.user_face_ids, collection, user_id)
        probes = list((await run_sync(deps.store.descriptors, collection, ids)).values())
    matches = await match_users(
        deps,
        collection,
        probes,
        pct(p.get("user_match_threshold"), default_threshold("SearchUsers")),
        int(p.get("max_users") or cap_limit("SearchUsers")),
        exclude_user=user_id,
    )
    return SearchUsersResponse(
        matches,
        collection.face_model_version,
        SearchedFace(face_id) if face_id is not None else None,
        SearchedUser(user_id) if user_id is not None else None,
    )


@dataclass(frozen=True)
class SearchedFaceDetails:
    face_detail: FaceDetail


@dataclass(frozen=True)
class UnsearchedFace:
    face_details: FaceDetail
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SearchUsersByImageResponse:
    user_matches: tuple[UserMatch, ...]
    face_model_version: str
    searched_face: SearchedFaceDetails | None
    unsearched_faces: tuple[UnsearchedFace, ...]


async def search_users_by_image(deps: OpDeps, p: dict[str, Any]) -> SearchUsersByImageResponse:
    """The largest face searched against users; no usable face gives no matches, not an error."""
    collection = await run_sync(deps.collection, p["collection_id"])
    analysis = await deps.engine.analyze_async(
        image_bytes(p["image"]), **model_of(deps, collection)
    )
    level = p.get("quality_filter") or "NONE"
    unsearched = [
        UnsearchedFace(face_detail(f.detected), ("FACE_NOT_LARGEST",)) for f in analysis.faces[1:]
    ]
    if not analysis.faces:
        return SearchUsersByImageResponse((), collection.face_model_version, None, ())
    largest = analysis.faces[0]
    reasons = quality_reasons(largest.detected, level)
    if reasons:
        unsearched.insert(0, UnsearchedFace(face_detail(largest.detected), tuple(reasons)))
        return SearchUsersByImageResponse(
            (), collection.face_model_version, None, tuple(unsearched)
        )
    matches = await match_users(
        deps,
        collection,
        [descriptor_of(largest)],
        pct(p.get("user_match_threshold"), default_threshold("SearchUsersByImage")),
        int(p.get("max_users") or cap_limit("SearchUsersByImage")),
    )
    return SearchUsersByImageResponse(
        matches,
        collection.face_model_version,
        SearchedFaceDetails(face_detail(largest.detected)),
        tuple(unsearched),
    )
