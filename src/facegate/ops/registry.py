"""The handler of every operation in :mod:`facegate.operations` (which says what each computes).

An operation here is its row plus the code that does it. ``plan`` and ``apply_held`` exist for
an operation that compares faces and writes (AssociateFaces): ``plan`` computes the answer
without writing, so the answer can be held for human review before anything depends on it, and
``apply_held`` performs the held plan once the review is released (idempotent: collecting twice
writes once).

Handlers get the matcher through :func:`deps_for`: an operation whose row says it does not
compare faces gets a matcher that refuses every use, so a comparison that its row does not
declare fails the request (InternalServerError) instead of escaping every face-comparison rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from facegate.operations import OPERATIONS as SPECS
from facegate.operations import OperationSpec
from facegate.ops import collections, detect, faces, search, tags, users
from facegate.ops.common import Bound, Enrolment, OpDeps
from facegate.ops.estimates import FalseCandidates

Handler = Callable[[OpDeps, dict[str, Any]], Awaitable[Any]]
ApplyHeld = Callable[[OpDeps, dict[str, Any], dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    """One operation: its row (what it computes) and its handlers."""

    spec: OperationSpec
    handler: Handler
    plan: Handler | None = None
    apply_held: ApplyHeld | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def holdable(self) -> bool:
        """Whether its answer can be held for review before anything depends on it: it writes
        nothing, or it can plan the write and apply it on release."""
        return not self.spec.writes or (self.plan is not None and self.apply_held is not None)


_HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "DetectFaces": detect.detect_faces,
        "CompareFaces": detect.compare_faces,
        "CreateCollection": collections.create_collection,
        "DescribeCollection": collections.describe_collection,
        "ListCollections": collections.list_collections,
        "DeleteCollection": collections.delete_collection,
        "IndexFaces": faces.index_faces,
        "ListFaces": faces.list_faces,
        "DeleteFaces": faces.delete_faces,
        "SearchFaces": search.search_faces,
        "SearchFacesByImage": search.search_faces_by_image,
        "CreateUser": users.create_user,
        "DeleteUser": users.delete_user,
        "ListUsers": users.list_users,
        "AssociateFaces": users.associate_faces,
        "DisassociateFaces": users.disassociate_faces,
        "SearchUsers": users.search_users,
        "SearchUsersByImage": users.search_users_by_image,
        "TagResource": tags.tag_resource,
        "UntagResource": tags.untag_resource,
        "ListTagsForResource": tags.list_tags_for_resource,
    }
)

_PLANS: Mapping[str, tuple[Handler, ApplyHeld]] = MappingProxyType(
    {"AssociateFaces": (users.plan_associations, users.apply_held_associations)}
)


def _operations() -> Mapping[str, Operation]:
    missing = set(SPECS) ^ set(_HANDLERS)
    if missing:  # a row without a handler, or a handler without a row: a programming error
        raise RuntimeError(f"operations without both a row and a handler: {sorted(missing)}")
    out: dict[str, Operation] = {}
    for name, spec in SPECS.items():
        plan, apply_held = _PLANS.get(name, (None, None))
        out[name] = Operation(spec, _HANDLERS[name], plan, apply_held)
    return MappingProxyType(out)


OPERATIONS: Mapping[str, Operation] = _operations()
"""Operation name -> its row and handlers. An operation not listed is refused (fail closed)."""


def deps_for(
    deps: OpDeps,
    operation: Operation,
    org_id: str,
    enrolment: Enrolment,
    bound: Bound | None = None,
    false_candidates: FalseCandidates | None = None,
) -> OpDeps:
    """``deps`` for one request of ``org_id`` to ``operation`` about the collection ``bound``:
    its organisation and enrolment terms, and the matcher only if the operation's row says it
    compares faces; an identification also gets ``false_candidates`` to fill in
    (:mod:`facegate.ops.estimates`)."""
    narrowed = deps.for_caller(
        org_id, enrolment, bound, compares_faces=operation.spec.compares_faces
    )
    if false_candidates is not None and operation.spec.identification:
        narrowed = replace(narrowed, false_candidates=false_candidates)
    return narrowed
