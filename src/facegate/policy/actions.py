"""The Cedar actions: one per Rekognition operation facegate serves, and the groups policies use.

This mirrors ``facegate.ops.registry.OPERATIONS`` (which this package may not import: policy sits
below ops in the layers) and ``schema.cedarschema``; tests check that all three agree.

Groups (Cedar action groups in the schema; membership is transitive):

* ``face_comparison``: every 1:1 and 1:N match (CompareFaces and the four searches).
* ``identification``: the 1:N subset (the searches), inside ``face_comparison``. The EU AI Act's
  remote biometric identification (Annex III 1(a)) and Microsoft's "identification" are 1:N;
  CompareFaces is verification.
* ``enrolment``: creating face templates that persist (IndexFaces, AssociateFaces).
* ``detection``: DetectFaces (no template is kept, no identity is matched).
* ``administration``: everything else.

Resources: an operation on a collection has that ``Collection`` as its resource; DetectFaces,
CompareFaces and ListCollections have the one ``Service`` entity; the tag operations name a
resource by ARN and accept either (the collection when the pipeline resolves the ARN to one of
the caller's collections, else the Service).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

GROUPS: tuple[str, ...] = (
    "face_comparison",
    "identification",
    "enrolment",
    "detection",
    "administration",
)

_IDENTIFICATION = ("SearchFaces", "SearchFacesByImage", "SearchUsers", "SearchUsersByImage")
_ADMINISTRATION = (
    "CreateCollection",
    "DescribeCollection",
    "ListCollections",
    "DeleteCollection",
    "ListFaces",
    "DeleteFaces",
    "CreateUser",
    "DeleteUser",
    "ListUsers",
    "DisassociateFaces",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
)


def _groups() -> Mapping[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {
        "DetectFaces": frozenset({"detection"}),
        "CompareFaces": frozenset({"face_comparison"}),
        "IndexFaces": frozenset({"enrolment"}),
        "AssociateFaces": frozenset({"enrolment"}),
    }
    for name in _IDENTIFICATION:
        table[name] = frozenset({"face_comparison", "identification"})
    for name in _ADMINISTRATION:
        table[name] = frozenset({"administration"})
    return MappingProxyType(table)


ACTION_GROUPS: Mapping[str, frozenset[str]] = _groups()
"""Operation name -> every group it belongs to (transitively). Its keys are all 21 actions."""

IDENTIFICATION_ACTIONS: frozenset[str] = frozenset(_IDENTIFICATION)
"""The 1:N searches (the ``identification`` group)."""

SERVICE_ACTIONS: frozenset[str] = frozenset({"DetectFaces", "CompareFaces", "ListCollections"})
"""Actions whose resource is always the Service (they name no collection)."""

EITHER_RESOURCE_ACTIONS: frozenset[str] = frozenset(
    {"TagResource", "UntagResource", "ListTagsForResource"}
)
"""Actions whose resource is a Collection when the request names one, else the Service."""
