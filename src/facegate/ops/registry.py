"""Every operation facegate serves: its handler, Cedar action, group and idempotency.

Groups (used by policies, see the governance issue): ``face_comparison`` = CompareFaces,
SearchFaces, SearchFacesByImage, SearchUsers, SearchUsersByImage; ``enrolment`` = IndexFaces,
AssociateFaces; ``detection`` = DetectFaces; ``administration`` = everything else. An operation
that is not listed here is refused (fail closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from facegate.ops import collections, detect, faces, search, tags, users
from facegate.ops.common import OpDeps

Handler = Callable[[OpDeps, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Handler
    group: str
    uses_engine: bool = False
    idempotent_token: bool = False
    collection_param: str | None = "collection_id"

    @property
    def cedar_action(self) -> str:
        return f'Action::"{self.name}"'

    @property
    def is_face_comparison(self) -> bool:
        return self.group == "face_comparison"


def _ops(*items: Operation) -> Mapping[str, Operation]:
    return MappingProxyType({op.name: op for op in items})


OPERATIONS: Mapping[str, Operation] = _ops(
    Operation("DetectFaces", detect.detect_faces, "detection", True, collection_param=None),
    Operation("CompareFaces", detect.compare_faces, "face_comparison", True, collection_param=None),
    Operation("CreateCollection", collections.create_collection, "administration"),
    Operation("DescribeCollection", collections.describe_collection, "administration"),
    Operation(
        "ListCollections", collections.list_collections, "administration", collection_param=None
    ),
    Operation("DeleteCollection", collections.delete_collection, "administration"),
    Operation("IndexFaces", faces.index_faces, "enrolment", True),
    Operation("ListFaces", faces.list_faces, "administration"),
    Operation("DeleteFaces", faces.delete_faces, "administration"),
    Operation("SearchFaces", search.search_faces, "face_comparison"),
    Operation("SearchFacesByImage", search.search_faces_by_image, "face_comparison", True),
    Operation("CreateUser", users.create_user, "administration", idempotent_token=True),
    Operation("DeleteUser", users.delete_user, "administration", idempotent_token=True),
    Operation("ListUsers", users.list_users, "administration"),
    Operation("AssociateFaces", users.associate_faces, "enrolment", idempotent_token=True),
    Operation(
        "DisassociateFaces", users.disassociate_faces, "administration", idempotent_token=True
    ),
    Operation("SearchUsers", users.search_users, "face_comparison"),
    Operation("SearchUsersByImage", users.search_users_by_image, "face_comparison", True),
    Operation("TagResource", tags.tag_resource, "administration", collection_param=None),
    Operation("UntagResource", tags.untag_resource, "administration", collection_param=None),
    Operation(
        "ListTagsForResource", tags.list_tags_for_resource, "administration", collection_param=None
    ),
)
